# shrinksim: how much will partial pooling shrink my group estimates?
# Grid -> simulate -> compile once -> fit (batched) -> summarize -> figures and report.


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/summarize.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        rules.summarize.output,
        rules.measures.output,
        rules.plot.output,
        rules.report_pages.output,

# shrinksim: how much will partial pooling shrink my group estimates?
# Grid -> simulate -> compile once -> fit (batched) -> summarize -> figures and report;
# with sbc.enabled also simulation-based calibration of the partial-pooling fit.


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/summarize.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/sbc.smk"


# Your data (docs/your-data.md): `snakemake --config data=path/to/file.csv`.
if config.get("data"):

    include: "workflow/rules/userdata.smk"


rule all:
    default_target: True
    input:
        all_outputs(),

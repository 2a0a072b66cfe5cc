# shrinksim: how much will partial pooling shrink my group estimates?
# Grid -> simulate -> compile once -> fit (batched) -> summarize -> figures and report;
# with sbc.enabled also simulation-based calibration of the partial-pooling fit.


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/summarize.smk"
include: "workflow/rules/sbc.smk"


rule all:
    default_target: True
    input:
        "results/summary/cells.parquet",
        "results/figures/shrinkage_vs_n.png",
        "results/figures/estimate_vs_observed.png",
        SBC_OUTPUTS if config["sbc"]["enabled"] else [],

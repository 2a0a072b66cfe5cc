rule summarize:
    input:
        groups=fit_outputs("groups"),
        fits=fit_outputs("fits"),
    output:
        groups="results/summary/groups.parquet",
        fits="results/summary/fits.parquet",
        shrinkage="results/summary/shrinkage.parquet",
        cells="results/summary/cells.parquet",
    log:
        "results/logs/summarize.log",
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        p0=config["simulation"]["p0"],
    shell:
        "python -m shrinksim summarize --groups {input.groups} --fits {input.fits}"
        " --p0 {params.p0} --out-dir results/summary 2> {log}"


rule plot:
    input:
        cells=rules.summarize.output.cells,
        groups=rules.summarize.output.groups,
    output:
        shrinkage=report(
            "results/figures/shrinkage_vs_n.png",
            caption="../report/shrinkage_vs_n.rst",
            category="Shrinkage",
        ),
        estimates=report(
            "results/figures/estimate_vs_observed.png",
            caption="../report/estimate_vs_observed.rst",
            category="Shrinkage",
        ),
    log:
        "results/logs/plot.log",
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        p0=config["simulation"]["p0"],
    shell:
        "python -m shrinksim plot --summary-dir results/summary --p0 {params.p0}"
        " --shrinkage-vs-n {output.shrinkage} --estimate-vs-observed {output.estimates} 2> {log}"

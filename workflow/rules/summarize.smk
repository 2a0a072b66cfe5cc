rule summarize:
    input:
        groups=fit_outputs("groups"),
        fits=fit_outputs("fits"),
        draws=fit_outputs("draws"),
    output:
        groups="results/summary/groups.parquet",
        fits="results/summary/fits.parquet",
        shrinkage="results/summary/shrinkage.parquet",
        cells="results/summary/cells.parquet",
        draws="results/summary/draws.parquet",
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
        " --draws {input.draws} --p0 {params.p0} --out-dir results/summary 2> {log}"


rule measures:
    input:
        groups=rules.summarize.output.groups,
        fits=rules.summarize.output.fits,
        shrinkage=rules.summarize.output.shrinkage,
    output:
        parquet="results/summary/measures.parquet",
        csv=report(
            "results/summary/measures.csv",
            caption="../report/measures_csv.rst",
            category="Tables and setup",
        ),
    log:
        "results/logs/measures.log",
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        p0=config["simulation"]["p0"],
        chains=config["sampler"]["chains"],
    shell:
        "python -m shrinksim measures --groups {input.groups} --fits {input.fits}"
        " --shrinkage {input.shrinkage} --p0 {params.p0} --chains {params.chains}"
        " --out {output.parquet} --csv {output.csv} 2> {log}"

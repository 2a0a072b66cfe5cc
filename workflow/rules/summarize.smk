# The streaming reduce: it reads every fit job's tables, one job at a time, finding them by
# the design (the command line names the results folder, not the files).
rule summarize:
    input:
        groups=every_fit_table("groups"),
        fits=every_fit_table("fits"),
        draws=first_batch_table("draws"),
    output:
        per_fit=summary("per_fit"),
        shrinkage=summary("shrinkage"),
        cells=summary("cells"),
        example_groups=summary("example_groups"),
        example_draws=summary("example_draws"),
    log:
        log("summarize"),
    benchmark:
        benchmark("summarize")
    conda:
        "../envs/shrinksim.yaml"
    threads: 2  # fit jobs are read in parallel
    resources:
        cpus_per_task=cpus,
        mem_mb=2000,
        runtime=30,
    params:
        study=study_settings(),
        results=results_folder,
    shell:
        "python -m shrinksim summarize --study {params.study:q} --results {params.results}"
        " --threads {threads} --per-fit-out {output.per_fit} --shrinkage-out {output.shrinkage}"
        " --cells-out {output.cells} --example-groups-out {output.example_groups}"
        " --example-draws-out {output.example_draws} 2> {log}"


rule measures:
    input:
        per_fit=rules.summarize.output.per_fit,
    output:
        parquet=summary("measures"),
        csv=report(
            result(design.MEASURES_CSV),
            caption="../report/measures_csv.rst",
            category="Tables and setup",
        ),
    log:
        log("measures"),
    benchmark:
        benchmark("measures")
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        outcome=outcome_settings(),
        chains=config["sampler"]["chains"],
    shell:
        "python -m shrinksim measures --per-fit {input.per_fit} --outcome {params.outcome:q}"
        " --chains {params.chains} --out {output.parquet} --csv {output.csv} 2> {log}"

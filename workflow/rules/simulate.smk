rule simulate:
    output:
        result(design.DATA),
    log:
        log("simulate/{datacell}/batch={batch}"),
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=1000,  # on SLURM the job's two snakemake processes count too
        runtime=5,
    params:
        settings=simulate_settings(),
        replicates=batch_replicates,
    shell:
        "python -m shrinksim simulate --settings {params.settings:q} --cell {wildcards.datacell}"
        " --replicates {params.replicates} --out {output} 2> {log}"

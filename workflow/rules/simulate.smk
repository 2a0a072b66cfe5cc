rule simulate:
    output:
        "results/data/{datacell}/batch~{batch}.parquet",
    log:
        "results/logs/simulate/{datacell}/batch~{batch}.log",
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        settings=json.dumps(
            {"seed": config["seed"], "simulation": config["simulation"]},
            sort_keys=True,
        ),
        replicates=lambda wc: ",".join(map(str, BATCHES[int(wc.batch)])),
    shell:
        "python -m shrinksim simulate --settings {params.settings:q} --cell {wildcards.datacell}"
        " --replicates {params.replicates} --out {output} 2> {log}"

rule compile_model:
    input:
        stan="stan/{program}.stan",
        included="stan/prior.stanfunctions",
    output:
        f"results/models/{ENGINE}/{{program}}.json",
    log:
        "results/logs/compile/{program}.log",
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        engine=ENGINE,
        cache_dir=config["cache_dir"],
    shell:
        "python -m shrinksim compile --stan-file {input.stan} --engine {params.engine}"
        " --cache-dir {params.cache_dir} --out {output} 2> {log}"


rule fit:
    input:
        data="results/data/{datacell}/batch~{batch}.parquet",
        compiled=lambda wc: f"results/models/{ENGINE}/{study.STAN_PROGRAMS[wc.model]}.json",
    output:
        groups="results/fits/{datacell}/prior~{prior}/model~{model}/batch~{batch}/groups.parquet",
        fits="results/fits/{datacell}/prior~{prior}/model~{model}/batch~{batch}/fits.parquet",
        draws="results/fits/{datacell}/prior~{prior}/model~{model}/batch~{batch}/draws.parquet",
    log:
        "results/logs/fit/{datacell}/prior~{prior}/model~{model}/batch~{batch}.log",
    benchmark:
        "results/benchmarks/fit/{datacell}/prior~{prior}/model~{model}/batch~{batch}.tsv"
    conda:
        "../envs/shrinksim.yaml"
    threads: 1
    resources:
        # On SLURM: a CPU per thread (chains run in parallel up to `threads`; raise with
        # --set-threads fit=4) and minutes for every attempt of every replicate in the batch.
        cpus_per_task=lambda wc, threads: threads,
        mem_mb=1500,
        runtime=lambda wc: fit_runtime(int(wc.batch)),
    params:
        settings=lambda wc: fit_settings(wc.prior),
        cache_dir=config["cache_dir"],
    shell:
        "python -m shrinksim fit --settings {params.settings:q}"
        " --cell {wildcards.datacell}/prior~{wildcards.prior}/model~{wildcards.model}"
        " --data {input.data} --compiled {input.compiled} --cache-dir {params.cache_dir}"
        " --threads {threads} --groups-out {output.groups} --fits-out {output.fits}"
        " --draws-out {output.draws} 2> {log}"

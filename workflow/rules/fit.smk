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


# One job per data cell and batch of replicates fits every (prior, model) of the grid, so
# process start-up and imports are paid once for all of them.
rule fit:
    input:
        data="results/data/{datacell}/batch~{batch}.parquet",
        compiled=sorted(
            {
                f"results/models/{ENGINE}/{study.STAN_PROGRAMS[model]}.json"
                for model in config["grid"]["model"]
            }
        ),
    output:
        groups=fit_job_outputs("groups"),
        fits=fit_job_outputs("fits"),
        draws=fit_job_outputs("draws"),
    log:
        "results/logs/fit/{datacell}/batch~{batch}.log",
    benchmark:
        "results/benchmarks/fit/{datacell}/batch~{batch}.tsv"
    conda:
        "../envs/shrinksim.yaml"
    threads: 1
    resources:
        # On SLURM: a CPU per thread (chains run in parallel up to `threads`; raise with
        # --set-threads fit=4) and minutes for every attempt of every fit in the job.
        cpus_per_task=lambda wc, threads: threads,
        mem_mb=1500,
        runtime=lambda wc: fit_runtime(int(wc.batch)),
    params:
        settings=fit_job_settings(),
        cells=lambda wc: fit_job_cells(wc.datacell),
        cache_dir=config["cache_dir"],
    shell:
        "python -m shrinksim fit --settings {params.settings:q} --cells {params.cells}"
        " --data {input.data} --compiled {input.compiled} --cache-dir {params.cache_dir}"
        " --threads {threads} --groups-out {output.groups} --fits-out {output.fits}"
        " --draws-out {output.draws} 2> {log}"

rule compile_model:
    input:
        stan="stan/{program}.stan",
        included=stan_includes,
    output:
        result(design.COMPILED),
    log:
        log("compile/{engine}/{program}"),
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        cache_dir=config["cache_dir"],
    shell:
        "python -m shrinksim compile --stan-file {input.stan} --engine {wildcards.engine}"
        " --cache-dir {params.cache_dir} --out {output} 2> {log}"


# One job per data cell and batch of replicates fits every (prior, model) of the grid, so
# process start-up and imports are paid once for all of them; one table of each kind holds
# all its fits.
rule fit:
    input:
        data=result(design.DATA),
        compiled=grid_compiled(),
    output:
        groups=fit_table("groups"),
        fits=fit_table("fits"),
        draws=fit_table("draws"),
    log:
        log("fit/{datacell}/batch={batch}"),
    benchmark:
        benchmark("fit/{datacell}/batch={batch}")
    conda:
        "../envs/shrinksim.yaml"
    threads: 1
    resources:
        # On SLURM: a CPU per thread (chains run in parallel up to `threads`; raise with
        # --set-threads fit=4) and minutes for every attempt of every fit in the job.
        cpus_per_task=cpus,
        mem_mb=1500,
        runtime=fit_runtime,
    params:
        settings=fit_job_settings(),
        cache_dir=config["cache_dir"],
    shell:
        "python -m shrinksim fit --settings {params.settings:q} --cell {wildcards.datacell}"
        " --data {input.data} --compiled {input.compiled} --cache-dir {params.cache_dir}"
        " --threads {threads} --groups-out {output.groups} --fits-out {output.fits}"
        " --draws-out {output.draws} 2> {log}"

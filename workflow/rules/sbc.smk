# Simulation-based calibration of the partial-pooling program (config `sbc:`; preset
# config/sbc.yaml). `snakemake calibration` builds only these outputs.


rule sbc_fit:
    input:
        compiled=sbc_compiled,
    output:
        result(design.SBC_RANKS),
    log:
        log("sbc/{sbccell}/batch={batch}"),
    conda:
        "../envs/shrinksim.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        settings=sbc_job_settings,
        simulations=sbc_simulations,
        cache_dir=config["cache_dir"],
    shell:
        "python -m shrinksim sbc-fit --settings {params.settings:q} --cell {wildcards.sbccell}"
        " --simulations {params.simulations} --compiled {input.compiled}"
        " --cache-dir {params.cache_dir} --threads {threads} --out {output} 2> {log}"


rule sbc_summarize:
    input:
        sbc_design.rank_files(config),
    output:
        ranks=result(design.SBC_TABLE, name="ranks"),
        tests=result(design.SBC_TABLE, name="tests"),
    log:
        log("sbc/summarize"),
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        study=sbc_settings(),
        results=results_folder,
        alpha=config["sbc"]["alpha"],
    shell:
        "python -m shrinksim sbc-summarize --study {params.study:q} --results {params.results}"
        " --alpha {params.alpha} --ranks-out {output.ranks} --tests-out {output.tests} 2> {log}"


rule sbc_plot:
    input:
        ranks=rules.sbc_summarize.output.ranks,
        tests=rules.sbc_summarize.output.tests,
    output:
        figure("sbc_ecdf", "Calibration"),
    log:
        log("sbc/plot"),
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m shrinksim sbc-plot --ranks {input.ranks} --tests {input.tests}"
        " --out {output} 2> {log}"


rule calibration:
    input:
        sbc_outputs(),

rule plot:
    input:
        measures=rules.measures.output.parquet,
        per_fit=rules.summarize.output.per_fit,
        example_groups=rules.summarize.output.example_groups,
        example_draws=rules.summarize.output.example_draws,
    output:
        shrinkage_vs_n=figure("shrinkage_vs_n", "Shrinkage"),
        shrinkage_vs_n_svg=svg("shrinkage_vs_n"),
        estimate_vs_observed=figure("estimate_vs_observed", "Shrinkage"),
        estimate_vs_observed_svg=svg("estimate_vs_observed"),
        posterior_densities=figure("posterior_densities", "Shrinkage"),
        posterior_densities_svg=svg("posterior_densities"),
        tau_posterior=figure("tau_posterior", "Accuracy and coverage"),
        tau_posterior_svg=svg("tau_posterior"),
        rmse_vs_n=figure("rmse_vs_n", "Accuracy and coverage"),
        rmse_vs_n_svg=svg("rmse_vs_n"),
        coverage_vs_n=figure("coverage_vs_n", "Accuracy and coverage"),
        coverage_vs_n_svg=svg("coverage_vs_n"),
        diagnostics=figure("diagnostics", "Diagnostics"),
        diagnostics_svg=svg("diagnostics"),
    log:
        log("plot"),
    benchmark:
        benchmark("plot")
    conda:
        "../envs/shrinksim.yaml"
    threads: 2  # figures are drawn in parallel
    resources:
        cpus_per_task=cpus,
        mem_mb=2000,
        runtime=10,
    params:
        outcome=outcome_settings(),
        density_n=config["figures"]["density_n"],
    shell:
        "python -m shrinksim plot --measures {input.measures} --per-fit {input.per_fit}"
        " --example-groups {input.example_groups} --example-draws {input.example_draws}"
        " --outcome {params.outcome:q} --density-n {params.density_n} --threads {threads}"
        " --out {output} 2> {log}"


rule report_pages:
    input:
        per_fit=rules.summarize.output.per_fit,
        measures=rules.measures.output.parquet,
    output:
        config=page("config", "Tables and setup"),
        software=page("software", "Tables and setup"),
        measures=page("measures", "Tables and setup"),
    log:
        log("report_pages"),
    benchmark:
        benchmark("report_pages")
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        config=config_json(),
    shell:
        "python -m shrinksim report --config {params.config:q} --per-fit {input.per_fit}"
        " --measures {input.measures} --config-out {output.config}"
        " --software-out {output.software} --measures-out {output.measures} 2> {log}"

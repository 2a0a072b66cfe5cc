rule plot:
    input:
        measures=rules.measures.output.parquet,
        groups=rules.summarize.output.groups,
        fits=rules.summarize.output.fits,
        draws=rules.summarize.output.draws,
    output:
        shrinkage_vs_n=figure("shrinkage_vs_n", "Shrinkage"),
        shrinkage_vs_n_svg="results/figures/shrinkage_vs_n.svg",
        estimate_vs_observed=figure("estimate_vs_observed", "Shrinkage"),
        estimate_vs_observed_svg="results/figures/estimate_vs_observed.svg",
        posterior_densities=figure("posterior_densities", "Shrinkage"),
        posterior_densities_svg="results/figures/posterior_densities.svg",
        tau_posterior=figure("tau_posterior", "Accuracy and coverage"),
        tau_posterior_svg="results/figures/tau_posterior.svg",
        rmse_vs_n=figure("rmse_vs_n", "Accuracy and coverage"),
        rmse_vs_n_svg="results/figures/rmse_vs_n.svg",
        coverage_vs_n=figure("coverage_vs_n", "Accuracy and coverage"),
        coverage_vs_n_svg="results/figures/coverage_vs_n.svg",
        diagnostics=figure("diagnostics", "Diagnostics"),
        diagnostics_svg="results/figures/diagnostics.svg",
    log:
        "results/logs/plot.log",
    conda:
        "../envs/shrinksim.yaml"
    threads: 2  # figures are drawn in parallel
    resources:
        cpus_per_task=lambda wc, threads: threads,
        mem_mb=2000,
        runtime=10,
    params:
        p0=config["simulation"]["p0"],
        density_n=config["figures"]["density_n"],
    shell:
        "python -m shrinksim plot --measures {input.measures} --groups {input.groups}"
        " --fits {input.fits} --draws {input.draws} --p0 {params.p0}"
        " --density-n {params.density_n} --threads {threads} --out {output} 2> {log}"


rule report_pages:
    input:
        fits=rules.summarize.output.fits,
        measures=rules.measures.output.parquet,
    output:
        config=report(
            "results/report/config.html",
            caption="../report/config.rst",
            category="Tables and setup",
        ),
        software=report(
            "results/report/software.html",
            caption="../report/software.rst",
            category="Tables and setup",
        ),
        measures=report(
            "results/report/measures.html",
            caption="../report/measures.rst",
            category="Tables and setup",
        ),
    log:
        "results/logs/report_pages.log",
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        config=json.dumps(config),
    shell:
        "python -m shrinksim report --config {params.config:q} --fits {input.fits}"
        " --measures {input.measures} --config-out {output.config}"
        " --software-out {output.software} --measures-out {output.measures} 2> {log}"

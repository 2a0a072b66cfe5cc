# Your data (docs/your-data.md): fit the user's groups under each prior, by the programs of
# their family, then a design-matched simulation at their exact group sizes and a what-if
# over scaled sizes.
# Included only when `data` is set; common.smk checks the file before any job runs.


rule userdata_prepare:
    input:
        config["data"],
    output:
        result(design.USERDATA_DATA),
    log:
        log("userdata/prepare"),
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        options=userdata_prepare_options(),
    shell:
        "python -m shrinksim userdata-prepare --data {input:q} {params.options}"
        " --out {output} 2> {log}"


rule userdata_fit:
    input:
        data=rules.userdata_prepare.output[0],
        compiled=userdata_compiled,
    output:
        groups=result(design.USERDATA_FIT, table="groups"),
        fits=result(design.USERDATA_FIT, table="fits"),
        draws=result(design.USERDATA_FIT, table="draws"),
        inference=result(design.USERDATA_INFERENCE),
    log:
        log("userdata/fit/prior={prior}/model={model}"),
    conda:
        "../envs/shrinksim.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=30,
    params:
        settings=one_prior_settings,
        cache_dir=config["cache_dir"],
    shell:
        "python -m shrinksim userdata-fit --settings {params.settings:q} --prior {wildcards.prior}"
        " --model {wildcards.model} --data {input.data} --compiled {input.compiled}"
        " --cache-dir {params.cache_dir} --threads {threads} --groups-out {output.groups}"
        " --fits-out {output.fits} --draws-out {output.draws}"
        " --inference-out {output.inference} 2> {log}"


rule userdata_design:
    input:
        data=rules.userdata_prepare.output[0],
        draws=userdata_partial_draws(),
    output:
        result(design.USERDATA_POINTS),
    log:
        log("userdata/design"),
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        quantiles=userdata_quantiles(),
    shell:
        "python -m shrinksim userdata-design --data {input.data} --draws {input.draws}"
        " --quantiles {params.quantiles} --out {output} 2> {log}"


rule userdata_simulate:
    input:
        data=rules.userdata_prepare.output[0],
        design=rules.userdata_design.output[0],
    output:
        result(design.USERDATA_SIMULATED),
    log:
        log("userdata/simulate/scale={scale}/tau={tauk}/batch={batch}"),
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        seed=config["seed"],
        replicates=userdata_replicates,
    shell:
        "python -m shrinksim userdata-simulate --seed {params.seed} --data {input.data}"
        " --design {input.design} --scale {wildcards.scale} --tau-index {wildcards.tauk}"
        " --replicates {params.replicates} --out {output} 2> {log}"


rule userdata_design_fit:
    input:
        data=rules.userdata_simulate.output[0],
        design=rules.userdata_design.output[0],
        compiled=userdata_compiled,
    output:
        groups=result(design.USERDATA_DESIGN_FIT, table="groups"),
        fits=result(design.USERDATA_DESIGN_FIT, table="fits"),
    log:
        log("userdata/design/scale={scale}/tau={tauk}/prior={prior}/batch={batch}"),
    conda:
        "../envs/shrinksim.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        settings=one_prior_settings,
        cache_dir=config["cache_dir"],
    shell:
        "python -m shrinksim userdata-design-fit --settings {params.settings:q}"
        " --prior {wildcards.prior} --scale {wildcards.scale} --tau-index {wildcards.tauk}"
        " --data {input.data} --design {input.design} --compiled {input.compiled}"
        " --cache-dir {params.cache_dir} --threads {threads} --groups-out {output.groups}"
        " --fits-out {output.fits} 2> {log}"


# Reads every fit of your data and every design-matched fit, finding them by the design.
rule userdata_summarize:
    input:
        data=rules.userdata_prepare.output[0],
        groups=userdata_fits("groups"),
        fits=userdata_fits("fits"),
        design=rules.userdata_design.output[0],
        design_groups=userdata_design_fits("groups"),
        design_fits=userdata_design_fits("fits"),
    output:
        groups=result(design.USERDATA_SUMMARY, name="groups"),
        fits=result(design.USERDATA_SUMMARY, name="fits"),
        design_fits=result(design.USERDATA_SUMMARY, name="design_fits"),
        design_cells=result(design.USERDATA_SUMMARY, name="design_cells"),
        whatif=result(design.USERDATA_SUMMARY, name="whatif"),
    log:
        log("userdata/summarize"),
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        study=userdata_settings(),
        results=results_folder,
        target=config["userdata"]["target"],
    shell:
        "python -m shrinksim userdata-summarize --study {params.study:q}"
        " --results {params.results} --data {input.data} --design {input.design}"
        " --target {params.target} --groups-out {output.groups} --fits-out {output.fits}"
        " --design-fits-out {output.design_fits} --design-cells-out {output.design_cells}"
        " --whatif-out {output.whatif} 2> {log}"


# PSIS-LOO comparison of every fit of your data, finding the files by the design.
rule userdata_loo:
    input:
        userdata_inference(),
    output:
        result(design.USERDATA_SUMMARY, name="loo"),
    log:
        log("userdata/loo"),
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        study=userdata_settings(),
        results=results_folder,
    shell:
        "python -m shrinksim userdata-loo --study {params.study:q}"
        " --results {params.results} --out {output} 2> {log}"


rule userdata_plot:
    input:
        data=rules.userdata_prepare.output[0],
        design=rules.userdata_design.output[0],
        groups=rules.userdata_summarize.output.groups,
        fits=rules.userdata_summarize.output.fits,
        design_cells=rules.userdata_summarize.output.design_cells,
        whatif=rules.userdata_summarize.output.whatif,
        loo=rules.userdata_loo.output[0],
        draws=userdata_fits("draws"),
    output:
        summary=report(
            result(design.USERDATA_FIGURE, name="summary.html"),
            caption="../report/userdata_summary.rst",
            category="Your data",
        ),
        estimates=report(
            result(design.USERDATA_FIGURE, name="estimate_vs_observed.png"),
            caption="../report/userdata_estimates.rst",
            category="Your data",
        ),
        densities=report(
            result(design.USERDATA_FIGURE, name="group_densities.png"),
            caption="../report/userdata_densities.rst",
            category="Your data",
        ),
        hyperparameters=report(
            result(design.USERDATA_FIGURE, name="tau_mu.png"),
            caption="../report/userdata_hyperparameters.rst",
            category="Your data",
        ),
        design=report(
            result(design.USERDATA_FIGURE, name="design_matched.png"),
            caption="../report/userdata_design.rst",
            category="Your data",
        ),
        whatif=report(
            result(design.USERDATA_FIGURE, name="whatif.png"),
            caption="../report/userdata_whatif.rst",
            category="Your data",
        ),
    log:
        log("userdata/plot"),
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        study=userdata_settings(),
        results=results_folder,
        priors=userdata_priors(),
        show_groups=config["userdata"]["show_groups"],
        target=config["userdata"]["target"],
        source=config["data"],
    shell:
        "python -m shrinksim userdata-plot --study {params.study:q} --results {params.results}"
        " --data {input.data} --design {input.design} --groups {input.groups}"
        " --fits {input.fits} --design-cells {input.design_cells}"
        " --whatif-table {input.whatif} --loo {input.loo} --priors {params.priors:q}"
        " --show-groups {params.show_groups} --target {params.target}"
        " --source {params.source:q} --estimates {output.estimates}"
        " --densities {output.densities} --hyperparameters {output.hyperparameters}"
        " --design-figure {output.design} --whatif {output.whatif}"
        " --summary {output.summary} 2> {log}"


rule userdata:
    default_target: False
    input:
        rules.userdata_summarize.output,
        rules.userdata_loo.output,
        rules.userdata_plot.output,

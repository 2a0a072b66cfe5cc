# Your data (issue 5): fit the user's groups under each prior, then a design-matched
# simulation at their exact group sizes and a what-if over scaled sizes. Included only when
# `data` is set; the file is checked here, before any job runs.
import os
import shlex

from shrinksim import userdata as ud

USERDATA = config["userdata"]
_problems = ud.config_problems(config)
if _problems:
    raise study.ConfigError("invalid configuration:\n  " + "\n  ".join(_problems))
# Raises UserDataError naming the file, row and column: no job runs on bad data.
ud.load(config["data"], control=USERDATA["control"])

UD = "results/userdata"
UD_PRIORS = config["grid"]["prior"]
UD_FITS = [(p, "partial") for p in UD_PRIORS] + [
    (study.NO_PRIOR, m) for m in ("none", "complete") if m in config["grid"]["model"]
]
UD_SCALES = [f"{float(s):g}" for s in USERDATA["scale"]]
UD_TAUS = list(range(len(USERDATA["tau_quantiles"])))
UD_BATCHES = study.batches(
    {"replicates": USERDATA["replicates"], "batch_size": config["batch_size"]}
)
# groups, fits and draws tables of every fit of the user's data
UD_FIT_FILES = {
    kind: [f"{UD}/fit/prior~{p}/model~{m}/{kind}.parquet" for p, m in UD_FITS]
    for kind in ("groups", "fits", "draws")
}
UD_CELLS = [
    f"{UD}/design/scale~{s}/tau~{k}/prior~{p}/batch~{b}"
    for s in UD_SCALES
    for k in UD_TAUS
    for p in UD_PRIORS
    for b in range(len(UD_BATCHES))
]


wildcard_constraints:
    scale=r"[0-9.]+(e[+-]?\d+)?",
    tauk=r"\d+",


rule userdata_prepare:
    input:
        config["data"],
    output:
        f"{UD}/data.parquet",
    log:
        "results/logs/userdata/prepare.log",
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        control=(
            ""
            if USERDATA["control"] is None
            else f"--control {shlex.quote(str(USERDATA['control']))}"
        ),
    shell:
        "python -m shrinksim userdata-prepare --data {input:q} {params.control}"
        " --out {output} 2> {log}"


rule userdata_fit:
    input:
        data=rules.userdata_prepare.output[0],
        compiled=lambda wc: f"results/models/{ENGINE}/{study.STAN_PROGRAMS[wc.model]}.json",
    output:
        groups=f"{UD}/fit/prior~{{prior}}/model~{{model}}/groups.parquet",
        fits=f"{UD}/fit/prior~{{prior}}/model~{{model}}/fits.parquet",
        draws=f"{UD}/fit/prior~{{prior}}/model~{{model}}/draws.parquet",
    log:
        "results/logs/userdata/fit/prior~{prior}/model~{model}.log",
    conda:
        "../envs/shrinksim.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=30,
    params:
        settings=lambda wc: fit_settings(wc.prior),
        cache_dir=config["cache_dir"],
    shell:
        "python -m shrinksim userdata-fit --settings {params.settings:q} --prior {wildcards.prior}"
        " --model {wildcards.model} --data {input.data} --compiled {input.compiled}"
        " --cache-dir {params.cache_dir} --threads {threads} --groups-out {output.groups}"
        " --fits-out {output.fits} --draws-out {output.draws} 2> {log}"


rule userdata_design:
    input:
        data=rules.userdata_prepare.output[0],
        draws=[f"{UD}/fit/prior~{p}/model~partial/draws.parquet" for p in UD_PRIORS],
    output:
        f"{UD}/design/points.parquet",
    log:
        "results/logs/userdata/design.log",
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        quantiles=",".join(map(str, USERDATA["tau_quantiles"])),
    shell:
        "python -m shrinksim userdata-design --data {input.data} --draws {input.draws}"
        " --quantiles {params.quantiles} --out {output} 2> {log}"


rule userdata_simulate:
    input:
        data=rules.userdata_prepare.output[0],
        design=rules.userdata_design.output[0],
    output:
        f"{UD}/design/scale~{{scale}}/tau~{{tauk}}/batch~{{batch}}.parquet",
    log:
        "results/logs/userdata/simulate/scale~{scale}/tau~{tauk}/batch~{batch}.log",
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        seed=config["seed"],
        replicates=lambda wc: ",".join(map(str, UD_BATCHES[int(wc.batch)])),
    shell:
        "python -m shrinksim userdata-simulate --seed {params.seed} --data {input.data}"
        " --design {input.design} --scale {wildcards.scale} --tau-index {wildcards.tauk}"
        " --replicates {params.replicates} --out {output} 2> {log}"


rule userdata_design_fit:
    input:
        data=rules.userdata_simulate.output[0],
        design=rules.userdata_design.output[0],
        compiled=f"results/models/{ENGINE}/{study.STAN_PROGRAMS['partial']}.json",
    output:
        groups=f"{UD}/design/scale~{{scale}}/tau~{{tauk}}/prior~{{prior}}/batch~{{batch}}/groups.parquet",
        fits=f"{UD}/design/scale~{{scale}}/tau~{{tauk}}/prior~{{prior}}/batch~{{batch}}/fits.parquet",
    log:
        "results/logs/userdata/design/scale~{scale}/tau~{tauk}/prior~{prior}/batch~{batch}.log",
    conda:
        "../envs/shrinksim.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        settings=lambda wc: fit_settings(wc.prior),
        cache_dir=config["cache_dir"],
    shell:
        "python -m shrinksim userdata-design-fit --settings {params.settings:q}"
        " --prior {wildcards.prior} --scale {wildcards.scale} --tau-index {wildcards.tauk}"
        " --data {input.data} --design {input.design} --compiled {input.compiled}"
        " --cache-dir {params.cache_dir} --threads {threads} --groups-out {output.groups}"
        " --fits-out {output.fits} 2> {log}"


rule userdata_summarize:
    input:
        groups=UD_FIT_FILES["groups"],
        fits=UD_FIT_FILES["fits"],
        design=rules.userdata_design.output[0],
        design_groups=[f"{cell}/groups.parquet" for cell in UD_CELLS],
        design_fits=[f"{cell}/fits.parquet" for cell in UD_CELLS],
    output:
        groups=f"{UD}/summary/groups.parquet",
        fits=f"{UD}/summary/fits.parquet",
        design_fits=f"{UD}/summary/design_fits.parquet",
        design_cells=f"{UD}/summary/design_cells.parquet",
        whatif=f"{UD}/summary/whatif.parquet",
    log:
        "results/logs/userdata/summarize.log",
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        target=USERDATA["target"],
        out_dir=lambda wc, output: os.path.dirname(output.groups),
    shell:
        "python -m shrinksim userdata-summarize --groups {input.groups} --fits {input.fits}"
        " --design {input.design} --design-groups {input.design_groups}"
        " --design-fits {input.design_fits} --target {params.target}"
        " --out-dir {params.out_dir} 2> {log}"


rule userdata_plot:
    input:
        summary=rules.userdata_summarize.output,
        data=rules.userdata_prepare.output[0],
        design=rules.userdata_design.output[0],
        draws=UD_FIT_FILES["draws"],
    output:
        summary=report(
            f"{UD}/figures/summary.html",
            caption="../report/userdata_summary.rst",
            category="Your data",
        ),
        estimates=report(
            f"{UD}/figures/estimate_vs_observed.png",
            caption="../report/userdata_estimates.rst",
            category="Your data",
        ),
        densities=report(
            f"{UD}/figures/group_densities.png",
            caption="../report/userdata_densities.rst",
            category="Your data",
        ),
        hyperparameters=report(
            f"{UD}/figures/tau_mu.png",
            caption="../report/userdata_hyperparameters.rst",
            category="Your data",
        ),
        design=report(
            f"{UD}/figures/design_matched.png",
            caption="../report/userdata_design.rst",
            category="Your data",
        ),
        whatif=report(
            f"{UD}/figures/whatif.png",
            caption="../report/userdata_whatif.rst",
            category="Your data",
        ),
    log:
        "results/logs/userdata/plot.log",
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        summary_dir=lambda wc, input: os.path.dirname(input.summary[0]),
        priors=json.dumps({p: config["priors"][p] for p in UD_PRIORS}),
        show_groups=USERDATA["show_groups"],
        target=USERDATA["target"],
        source=config["data"],
    shell:
        "python -m shrinksim userdata-plot --summary-dir {params.summary_dir}"
        " --data {input.data} --design {input.design} --draws {input.draws}"
        " --priors {params.priors:q} --show-groups {params.show_groups}"
        " --target {params.target} --source {params.source:q}"
        " --estimates {output.estimates} --densities {output.densities}"
        " --hyperparameters {output.hyperparameters} --design-figure {output.design}"
        " --whatif {output.whatif} --summary {output.summary} 2> {log}"


rule userdata:
    default_target: False
    input:
        rules.userdata_summarize.output,
        rules.userdata_plot.output,

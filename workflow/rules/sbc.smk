# Simulation-based calibration of the partial-pooling program (config `sbc:`; preset
# config/sbc.yaml). `snakemake calibration` builds only these outputs.
from shrinksim import sbc

SBC_CELLS = sbc.cells(config)
SBC_BATCHES = sbc.batches(config)
SBC_OUTPUTS = ["results/sbc/tests.parquet", "results/figures/sbc_ecdf.png"]


rule sbc_fit:
    input:
        compiled=f"results/models/{ENGINE}/{sbc.PROGRAM}.json",
    output:
        "results/sbc/fits/{sbccell}/batch~{batch}.parquet",
    log:
        "results/logs/sbc/{sbccell}/batch~{batch}.log",
    wildcard_constraints:
        sbccell=r"n~\d+/groups~\d+/prior~[^/]+",
    conda:
        "../envs/shrinksim.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        settings=lambda wc: sbc.job_settings(config, wc.sbccell),
        simulations=lambda wc: ",".join(map(str, SBC_BATCHES[int(wc.batch)])),
        cache_dir=config["cache_dir"],
    shell:
        "python -m shrinksim sbc-fit --settings {params.settings:q} --cell {wildcards.sbccell}"
        " --simulations {params.simulations} --compiled {input.compiled}"
        " --cache-dir {params.cache_dir} --threads {threads} --out {output} 2> {log}"


rule sbc_summarize:
    input:
        [
            f"results/sbc/fits/{cell.path}/batch~{batch}.parquet"
            for cell in SBC_CELLS
            for batch in range(len(SBC_BATCHES))
        ],
    output:
        ranks="results/sbc/ranks.parquet",
        tests="results/sbc/tests.parquet",
    log:
        "results/logs/sbc/summarize.log",
    conda:
        "../envs/shrinksim.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        alpha=config["sbc"]["alpha"],
    shell:
        "python -m shrinksim sbc-summarize --ranks {input} --alpha {params.alpha}"
        " --ranks-out {output.ranks} --tests-out {output.tests} 2> {log}"


rule sbc_plot:
    input:
        ranks=rules.sbc_summarize.output.ranks,
        tests=rules.sbc_summarize.output.tests,
    output:
        report(
            "results/figures/sbc_ecdf.png",
            caption="../report/sbc_ecdf.rst",
            category="Calibration",
        ),
    log:
        "results/logs/sbc/plot.log",
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
        SBC_OUTPUTS,

import json
from pathlib import Path

from snakemake.utils import min_version, validate

from shrinksim import config as study
from shrinksim.engine import resolve_engine

min_version("9.0")


report: "../report/workflow.rst"


# One line per problem, naming the key, before any job runs; then the catalogue's check.
study.check(
    config,
    study.load_yaml(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"),
)
validate(config, "../schemas/config.schema.yaml")

ENGINE = resolve_engine(config["engine"])
FIT_CELLS = study.fit_cells(config)
MODEL_FITS = study.model_fits(config)
BATCHES = study.batches(config)


wildcard_constraints:
    datacell=r"n~\d+/groups~\d+/(tau|p_sd)~[^/]+",
    prior=r"[^/]+",
    model="|".join(study.MODELS),
    batch=r"\d+",
    program=r"[a-z_]+",


def fit_outputs(kind):
    """Every fit job's `kind` table (groups, fits or draws) in the grid."""
    return [
        f"results/fits/{cell.path}/batch~{batch}/{kind}.parquet"
        for cell in FIT_CELLS
        for batch in range(len(BATCHES))
    ]


def fit_job_outputs(kind):
    """A fit job's `kind` tables: one per (prior, model) of its data cell and batch."""
    return [
        f"results/fits/{{datacell}}/prior~{prior}/model~{model}/batch~{{batch}}/{kind}.parquet"
        for prior, model in MODEL_FITS
    ]


def fit_job_cells(datacell):
    """The fit cells (paths) of a fit job, in the order of `fit_job_outputs`."""
    data = study.DataCell.from_path(datacell)
    return [study.FitCell(data, prior, model).path for prior, model in MODEL_FITS]


def fit_job_settings():
    """What a study fit job's numbers depend on, besides its data: every prior of the grid."""
    settings = sampling_settings()
    settings["priors"] = {
        prior: config["priors"][prior] for prior in config["grid"]["prior"]
    }
    return json.dumps(settings, sort_keys=True)


def fit_settings(prior):
    """What a one-prior fit job's numbers depend on, besides its data (a change reruns it)."""
    settings = sampling_settings()
    if prior != study.NO_PRIOR:
        settings["tau_prior"] = config["priors"][prior]
    return json.dumps(settings, sort_keys=True)


def sampling_settings():
    """The settings every fit depends on: seed, sampler, retries, prior on mu."""
    return {key: config[key] for key in ("seed", "sampler", "retry", "intercept_prior")}


def figure(name, category):
    """A figure's PNG, marked for the report with its caption workflow/report/{name}.rst."""
    return report(
        f"results/figures/{name}.png",
        caption=f"../report/{name}.rst",
        category=category,
    )


def fit_runtime(batch, minutes_per_fit=2):
    """Wall-time minutes a fit job asks for: every attempt of every replicate of each of its
    fits, plus start-up."""
    fits = len(MODEL_FITS) * len(BATCHES[batch])
    return 10 + minutes_per_fit * fits * config["retry"]["max_attempts"]

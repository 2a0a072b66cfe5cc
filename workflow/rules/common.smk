# Helpers of the rules. The checked config, the engine, and named functions that turn the
# design of shrinksim.design (cells, batches, seeds and every result path) into inputs,
# outputs and params; the rule files call these and spell no path or Python of their own.
import json
from functools import cache
from pathlib import Path

from snakemake.utils import min_version, validate

from shrinksim import design, settings
from shrinksim.engines import resolve_engine
from shrinksim.engines.source import included_files
from shrinksim.families import OUTCOME_FAMILIES
from shrinksim.sbc import design as sbc_design
from shrinksim.study.outcome import StudyOutcome

min_version("9.0")


report: "../report/workflow.rst"


# One line per problem, naming the key, before any job runs; then the catalogue's check.
settings.check(
    config,
    settings.load_yaml(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"),
)
validate(config, "../schemas/config.schema.yaml")
# The family your data are fitted as (gaussian estimates with known se: gaussian_se).
USERDATA_FAMILY = None
if config.get("data"):
    from shrinksim.userdata.load import check as check_userdata

    # Raises naming the file, row and column: no job runs on bad data.
    USERDATA_FAMILY = OUTCOME_FAMILIES[check_userdata(config).fitted_as]

OUTCOME = StudyOutcome.from_config(config)


wildcard_constraints:
    **design.WILDCARDS,


def result(template, **fields):
    """The result path of a template of shrinksim.design, with ``fields`` filled in."""
    return design.result_path(template, **fields)


def log(job):
    """The log file of ``job`` (the rule and its wildcards)."""
    return result(design.LOG, job=job)


def benchmark(job):
    """The benchmark record (wall time, peak RSS) of ``job``."""
    return result(design.BENCHMARK, job=job)


def figure(name, category, caption=None):
    """A figure's PNG, marked for the report with its caption workflow/report/{name}.rst."""
    return report(
        result(design.FIGURE, name=name, ext="png"),
        caption=f"../report/{caption or name}.rst",
        category=category,
    )


def svg(name):
    """A figure's SVG copy."""
    return result(design.FIGURE, name=name, ext="svg")


def page(name, category, caption=None):
    """A report page (HTML) with its caption."""
    return report(
        result(design.REPORT_PAGE, name=name),
        caption=f"../report/{caption or name}.rst",
        category=category,
    )


@cache
def engine_of(program):
    """The engine that fits ``program`` (``auto``: nutpie where it has the program's density,
    else a Stan engine), looked up once per program: input functions call it per job."""
    return resolve_engine(config["engine"], program)


def compiled(program):
    """The compiled-model file of ``program`` for the engine that fits it."""
    return result(design.COMPILED, engine=engine_of(program), program=program)


def userdata_compiled(wildcards):
    """The compiled program that fits your data with model ``wildcards.model`` (partial
    pooling in the design-matched fits), by the family of your data."""
    model = getattr(wildcards, "model", "partial")
    return compiled(USERDATA_FAMILY.study_program(model))


def grid_compiled():
    """The compiled programs a study fit job needs: the family's, one per model of the grid."""
    programs = {OUTCOME.family.study_program(m) for m in config["grid"]["model"]}
    return sorted(compiled(program) for program in programs)


def stan_includes(wildcards):
    """The files program ``wildcards.program`` includes (prior functions, the gaussian
    likelihood), as its ``#include`` lines name them."""
    stan_file = Path(workflow.basedir, "stan", f"{wildcards.program}.stan")
    return [f"stan/{path.name}" for path in included_files(stan_file)]


def fit_table(table):
    """A fit job's ``table`` (groups, fits or draws); wildcards datacell and batch."""
    return result(design.FIT_TABLE, table=table)


def every_fit_table(table):
    """Every fit job's ``table``: the reduce's inputs (it finds them by the design itself)."""
    return design.fit_job_tables(config, table)


def first_batch_table(table):
    """Every data cell's first-batch ``table``: the figures' examples."""
    return design.fit_job_tables(config, table, batches=[0])


def summary(name):
    """A single-file study table (per_fit, shrinkage, cells, measures, example_*)."""
    return result(design.SUMMARY, name=name)


def as_json(value):
    """``value`` as JSON, keys sorted: a param whose change reruns the job."""
    return json.dumps(value, sort_keys=True)


def family_settings(family=None):
    """The outcome family (the study's, or ``family``) and what it needs besides the grid:
    only a non-binomial family's keys, so the binomial study's params (and jobs) stay as
    they were."""
    family = family or OUTCOME.family
    if family.name == "binomial":
        return {}
    found = {"family": family.name}
    if family.has_sigma:
        found["sigma_prior"] = config["sigma_prior"]
    return found


def study_settings():
    """What the reduces need to list a study's fit jobs (and the family's theory)."""
    keys = ("grid", "simulation", "replicates", "batch_size")
    return as_json({key: config[key] for key in keys} | family_settings())


def outcome_settings():
    """The family and population of the theory curve and the figures' labels."""
    return as_json(OUTCOME.settings())


def simulate_settings():
    """What simulated data depend on: the seed, the data settings and the family."""
    found = {"seed": config["seed"], "simulation": config["simulation"]}
    return as_json(found | family_settings())


def sampling_settings(family=None):
    """The settings every fit depends on: seed, sampler, retries, priors on mu (and sigma),
    the family (the study's, or ``family``)."""
    keys = ("seed", "sampler", "retry", "intercept_prior")
    return {key: config[key] for key in keys} | family_settings(family)


def fit_job_settings():
    """What a study fit job's numbers depend on, besides its data: its fits and priors."""
    priors = {prior: config["priors"][prior] for prior in config["grid"]["prior"]}
    return as_json(
        sampling_settings() | {"priors": priors, "fits": design.model_fits(config)}
    )


def one_prior_settings(wildcards):
    """What a fit of your data (or of its design-matched data) under prior
    ``wildcards.prior`` depends on, besides its data: its family is your data's."""
    settings_ = sampling_settings(USERDATA_FAMILY)
    if wildcards.prior != design.NO_PRIOR:
        settings_["tau_prior"] = config["priors"][wildcards.prior]
    return as_json(settings_)


def batch_replicates(wildcards):
    """The replicates of batch ``wildcards.batch`` as ``start:stop``."""
    return design.span(design.replicate_batches(config)[int(wildcards.batch)])


def cpus(wildcards, threads):
    """On SLURM: a CPU per thread."""
    return threads


def fit_runtime(wildcards, minutes_per_fit=2):
    """Wall-time minutes a fit job asks for: every attempt of every replicate of each of
    its fits, plus start-up."""
    replicates = design.replicate_batches(config)[int(wildcards.batch)]
    fits = len(design.model_fits(config)) * len(replicates)
    return 10 + minutes_per_fit * fits * config["retry"]["max_attempts"]


def sbc_job_settings(wildcards):
    """What an SBC job's numbers depend on."""
    return sbc_design.job_settings(config, wildcards.sbccell)


def sbc_compiled(wildcards):
    """The compiled program an SBC job calibrates: its family's partial pooling."""
    return compiled(sbc_design.SbcCell.from_path(wildcards.sbccell).program)


def sbc_simulations(wildcards):
    """The simulations of SBC batch ``wildcards.batch`` as ``start:stop``."""
    return design.span(sbc_design.batches(config)[int(wildcards.batch)])


def sbc_outputs():
    """What `snakemake calibration` builds (and `all`, with sbc.enabled)."""
    return [
        result(design.SBC_TABLE, name="tests"),
        result(design.FIGURE, name="sbc_ecdf", ext="png"),
    ]


def userdata_settings():
    """What the your-data reduces need to list its fits."""
    return as_json({key: config[key] for key in ("grid", "userdata", "batch_size")})


def userdata_prepare_options():
    """The family and control group options of userdata-prepare (no control option when
    none is configured)."""
    from shrinksim.userdata.forms import family_of

    control = config["userdata"]["control"]
    family = f"--family {family_of(config)}"
    if control is None:
        return family
    return f"{family} --control {json.dumps(str(control))}"


def userdata_fits(table):
    """The ``table`` of every fit of the user's data."""
    return design.userdata_fit_files(config, table)


def userdata_inference():
    """The InferenceData file (netCDF) of every fit of the user's data."""
    return design.userdata_inference_files(config)


def userdata_partial_draws():
    """The draws of the partial-pooling fits of the user's data (one per prior)."""
    return [
        result(design.USERDATA_FIT, prior=prior, model="partial", table="draws")
        for prior in config["grid"]["prior"]
    ]


def userdata_design_fits(table):
    """The ``table`` of every design-matched fit job."""
    return design.userdata_design_fit_files(config, table)


def userdata_replicates(wildcards):
    """The replicates of design-matched batch ``wildcards.batch``, comma-separated."""
    count = int(config["userdata"]["replicates"])
    return ",".join(
        map(str, design.batches(count, config["batch_size"])[int(wildcards.batch)])
    )


def userdata_priors():
    """The grid's priors as JSON (name -> prior text), for the hyperparameter figure."""
    return as_json(
        {prior: config["priors"][prior] for prior in config["grid"]["prior"]}
    )


def all_outputs():
    """The default target: the study's tables, figures and report pages, plus your data's
    and the calibration's when configured."""
    outputs = [summary(name) for name in ("per_fit", "shrinkage", "cells", "measures")]
    outputs += [result(design.FIGURE, name=name, ext="png") for name in design.FIGURES]
    outputs += [
        result(design.REPORT_PAGE, name=name)
        for name in ("config", "software", "measures")
    ]
    if config.get("data"):
        outputs.append(result(design.USERDATA_FIGURE, name="summary.html"))
    if config["sbc"]["enabled"]:
        outputs += sbc_outputs()
    return outputs


def config_json():
    """The configuration the study runs with, in its own key order (the report shows it)."""
    return json.dumps(config)


def sbc_settings():
    """What the SBC reduce needs to list its rank tables."""
    return as_json({"sbc": config["sbc"]})


def userdata_quantiles():
    """The tau quantiles of the design-matched study, comma-separated."""
    return ",".join(map(str, config["userdata"]["tau_quantiles"]))


def results_folder(wildcards, input):
    """The results folder as the job sees it (a storage plugin may prefix it): that of its
    first input. The reduces find their many inputs below it by the design."""
    return design.results_folder(input[0])

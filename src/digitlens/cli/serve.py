"""``digitlens serve``: the web page, where a learner draws a digit and looks inside the network."""

from __future__ import annotations

import ipaddress
import json
import os
import socket

import typer

from . import app
from ._common import UserError, console, err_console, friendly_errors


def default_models() -> tuple[str, ...]:
    """The models the page offers first, in the order they are trained when missing: the
    training ladder's rungs (:data:`digitlens.training.ladder.RUNGS`, logistic first), then
    ``cnn_tiny``; each named once.  Those missing from the cache train in the background while
    the page is already up (with ``--workers N``: before serving)."""
    from ..training.ladder import RUNGS

    # cnn_tiny too: its 6 filters are the easiest convolution to read on the page
    return tuple(r.name for r in RUNGS) + ("cnn_tiny",)


def is_loopback(host: str) -> bool:
    """True for addresses only this computer can reach (127.0.0.0/8, ::1, "localhost")."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host.strip("[]"), port))
        except OSError as e:
            raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e}); is another "
                            f"server running there? Try --port {port + 1}") from None


def url_for(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def train_missing(names, *, epochs: int | None = None) -> list[str]:
    """Train (with progress bars) and cache every zoo model in ``names`` that is not cached yet;
    returns the names trained."""
    from .._util import paths
    from .train import train_and_save

    missing = [n for n in names if not paths.model_path(n).exists()]
    if not missing:
        return []
    console.print(f"First run: training {', '.join(missing)} on the 4,000 bundled digits (once; "
                  f"they are saved in {paths.models_dir()}).", highlight=False)
    for name in missing:
        _, history, acc = train_and_save(name, paths.model_path(name), epochs=epochs, label=name)
        if not history.epochs:
            raise UserError(f"training {name} stopped before its first epoch; nothing to serve")
        console.print(f"  [bold]{name}[/]: {acc:.1%} of the held-out test digits right "
                      f"({history.seconds:.1f} s)", highlight=False)
    return missing


@app.command()
@friendly_errors
def serve(
    model: str = typer.Option("cnn", "--model", "-m", help="The model the page opens with "
                              "(the others are one click away)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on. The default is only "
                             "reachable from this computer; 0.0.0.0 lets a class join (with "
                             "a warning)."),
    port: int = typer.Option(8000, help="Port to listen on.", min=1, max=65535),
    train: bool = typer.Option(True, "--train/--no-train", help="Train the ladder's models "
                               "(see `digitlens ladder`) that are not cached yet, in the "
                               "background while the page is up, simplest first."),
    train_epochs: int = typer.Option(None, "--train-epochs", min=1, max=60,
                                     help="Train those missing models for this many epochs "
                                          "each instead of their recipe's (a quick look)."),
    allow_training: bool = typer.Option(True, "--allow-training/--no-allow-training",
                                        help="Let the page's training view train models "
                                             "(and replace the cached ones)."),
    blas_threads: int = typer.Option(1, help="Threads per matrix product.  Requests already "
                                     "run in parallel threads, so 1 is fastest: with more, "
                                     "concurrent requests fight over the cores.", min=1),
    workers: int = typer.Option(1, help="Server processes.  For a class: one per CPU core "
                                "answers more people at once (the training view is then off, "
                                "as a job would live in one process only).", min=1, max=64),
    allowed_host: list[str] = typer.Option([], "--allowed-host", help="Another name the page "
                                           "may be opened at (repeatable), e.g. this "
                                           "computer's name for a class.  Loopback names and "
                                           "--host always work; other names are refused "
                                           "(they could be a DNS-rebinding attack)."),
    token: str = typer.Option(None, "--token", envvar="DIGITLENS_TOKEN", help="A teacher's "
                              "password: training, the lab and cancelling then need "
                              "'Authorization: Bearer TOKEN' (env DIGITLENS_TOKEN)."),
    compute_threads: int = typer.Option(2, help="Explanations computed at once per process; "
                                        "more requests wait their turn.  Mostly Python under "
                                        "one lock, so more threads only add switching.",
                                        min=1, max=64),
    class_mode: bool = typer.Option(False, "--class", help="Class mode: learners join with a "
                                    "nickname at /static/class.html and draw digits; the "
                                    "teacher's dashboard needs the token printed at start-up "
                                    "(use with --host 0.0.0.0 for the local network)."),
):
    """Serve the web page: draw a digit and watch the network read it, layer by layer."""
    import uvicorn

    from ..nn.zoo import MODELS

    if model not in MODELS:
        raise UserError(f"unknown model {model!r}; choose one of {list(MODELS)}")
    _check_port_free(host, port)
    names = [n for n in default_models() if n in MODELS]
    if model not in names:
        names.append(model)
    if class_mode:
        token = _class_token(token, workers)
    if train and workers > 1:  # each worker process has its own jobs: train before serving
        train_missing(names, epochs=train_epochs)
    allow_training = _process_settings(blas_threads, workers, allow_training)
    web = _web_app(model, workers=workers, blas_threads=blas_threads,
                   allow_training=allow_training, compute_threads=compute_threads,
                   security={"host": host, "allowed_hosts": list(allowed_host), "token": token})
    if class_mode:
        from ..view.server.classroom import enable_class

        enable_class(web, token)
    if train and workers == 1:
        _train_in_background(web, names, epochs=train_epochs)
    if not is_loopback(host):
        _warn_public(host, port, allow_training)
    console.print(f"digitlens is ready: open [bold]{url_for(host, port)}[/]  (Ctrl-C stops)",
                  highlight=False)
    if class_mode:
        from .mine import class_banner

        class_banner(url_for(host, port), token)
    from ..view.server.protocol import uvicorn_limits

    uvicorn.run(web, host=host.strip("[]"), port=port, log_level="warning", **uvicorn_limits(),
                **({"workers": workers, "factory": True} if workers > 1 else {}))


def _process_settings(blas_threads: int, workers: int, allow_training: bool) -> bool:
    """Limit BLAS for the whole server process; return whether the training view stays on (not
    with several worker processes: a training job would live in one of them only)."""
    # measured with benchmarks/load_test.py (8 clients, cnn): one BLAS thread answers full
    # explanations ~8x faster than OpenBLAS's default of one per core
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=blas_threads, user_api="blas")
    if workers > 1 and allow_training:
        console.print(f"{workers} worker processes: the page's training view is off (use "
                      "`digitlens train`, then reload the page).", highlight=False)
        return False
    return allow_training


def _class_token(token: str | None, workers: int) -> str:
    """Class mode's teacher token (the one given, or a fresh random one); one process only."""
    if workers > 1:
        raise UserError("--class runs one server process (the learners' keys live in it); "
                        "leave out --workers")
    import secrets

    return token or secrets.token_urlsafe(12)


def _warn_public(host: str, port: int, allow_training: bool) -> None:
    """Say, on stderr, that a page served beyond loopback can be used by anyone who reaches it."""
    heavy = " and train models or run the activation lab" if allow_training else ""
    err_console.print(f"[bold yellow]warning:[/] listening on {host}: anyone who can reach "
                      f"this computer on port {port} can use the page{heavy}"
                      ". Use --host 127.0.0.1 to keep it private"
                      + ("" if not allow_training else ", or --no-allow-training") + ".",
                      highlight=False, soft_wrap=True)


def _train_in_background(web, names, *, epochs: int | None) -> list[str]:
    """Queue the missing models of ``names`` on the app's training jobs (ladder order, one
    heavy job at a time: the queue waits while the lab or the playground runs); the page
    shows their progress (``/api/models``) and uses each as soon as it is saved."""
    from .._util import paths

    missing = [n for n in names if not paths.model_path(n).exists()]
    if not missing:
        return []
    jobs, lab = web.state.jobs, web.state.lab
    jobs.wait_while = lambda: lab.running or lab.playground.running
    queued = jobs.enqueue(missing, epochs=epochs)
    console.print(f"First run: training {', '.join(queued)} on the 4,000 bundled digits in the "
                  f"background, in this order (saved in {paths.models_dir()}); the page uses "
                  "each model as soon as it is ready.", highlight=False)
    return queued


def _web_app(model: str, *, workers: int, blas_threads: int, allow_training: bool,
             compute_threads: int, security: dict | None = None):
    """The app for ``uvicorn.run``: built here for one process, or, for several worker
    processes, the import string of the factory each worker calls with these settings."""
    import threading

    from ..recognizer import Recognizer
    from ..view.server.app import SERVE_ENV, create_app, warm_up
    from ..view.server.security import HostPolicy

    security = security or {"host": "127.0.0.1", "allowed_hosts": [], "token": None}

    if workers > 1:
        # worker processes start afresh: they read these when NumPy loads its BLAS
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(blas_threads)
        os.environ[SERVE_ENV] = json.dumps({"default_model": model, "warm": [model],
                                           "compute_threads": compute_threads, **security})
        return "digitlens.view.server.app:app_from_env"
    web = create_app(Recognizer(), default_model=model, training=allow_training,
                     compute_threads=compute_threads, token=security["token"],
                     hosts=HostPolicy(security["host"], security["allowed_hosts"]))
    # load the opening model and its unit atlas now, so the first drawing is answered quickly
    threading.Thread(target=warm_up, args=(web, [model]), daemon=True).start()
    return web

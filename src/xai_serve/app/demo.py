"""``make demo`` (``xai demo``): the main job on the built-in digits data, section by section.

1. the default model (:mod:`xai_serve.app.default_model`): SimpleNet on the digits, trained on first use;
2. its credentials (sanity check and faithfulness of every method);
3. serving: archive, TorchServe, every method over gRPC, ``demo/report.html`` (the ``decomposed`` row
   from a ResNet-20 on the same digits, served beside it: its last feature maps are 7x7, SimpleNet's 1x1;
   a small digits ViT's rows under the CNN's, with the methods that apply to it and those it refuses);
4. General Pattern Theory: ResGPTNet on the pattern digits, its class and component heatmaps;
5. dissection of that pattern-theory model against its generator's concepts (it exists after step 4);
6. the decomposed final layer ("Decomposing the Deep") of ResNet-20 on the digits.

Each later section links its page from the demo report (:mod:`xai_serve.app.report_links`).
"""

from __future__ import annotations

import time
from pathlib import Path


def _log(msg: str) -> None:
    print(f"[demo] {msg}")


def console_command(models: list[str], store: Path = Path("model_store")) -> str:
    """The one line that serves the demo's archives and opens the explanation console on them
    (``xai console``: the default addresses and the key file of ``xai serve``'s default state dir)."""
    return f"xai serve {' '.join(models)} --store {store} && xai console --port 8090"


def run_demo() -> None:
    """Run every section in order; the report is ``demo/report.html``."""
    from xai_serve.app.certify_section import demo_certify
    from xai_serve.app.decomposition_section import PAGE, decomposed_section
    from xai_serve.app.default_model import DECOMPOSITION, DEFAULT, VIT, print_metrics
    from xai_serve.app.dissection_section import SUMMARY, demo_section
    from xai_serve.app.pattern_theory_section import gpt_section
    from xai_serve.app.report_links import link_from_report
    from xai_serve.app.serving_section import Companion, serve_and_report
    from xai_serve.app.vit_rows import vit_companion

    ckpt = DEFAULT.ensure()
    print_metrics(ckpt)
    creds = demo_certify(ckpt, Path("demo") / "credentials", log=_log)
    resnet = DECOMPOSITION.ensure()
    companion = Companion(
        "digits_resnet20",
        resnet,
        ("decomposed",),
        demo_certify(resnet, Path("demo") / "credentials_resnet20", methods=["decomposed"], log=_log),
        "ResNet-20 on the same digits, 7x7 last maps",
    )
    vit = vit_companion(VIT.ensure())
    tic = time.perf_counter()
    report = serve_and_report(
        ckpt, out_dir=Path("demo"), credentials=creds, log=_log, companion=companion, beside=vit
    )
    _log(f"served and explained in {time.perf_counter() - tic:.1f} s")

    tic = time.perf_counter()
    gpt_page = gpt_section(report, log=_log)
    _log(f"General Pattern Theory page: {gpt_page.resolve()} ({time.perf_counter() - tic:.1f} s)")

    tic = time.perf_counter()
    dissection = demo_section(None, report)
    page = report.parent / "dissection" / SUMMARY
    _log(
        f"dissection page: {page.resolve()} (full report {dissection.report}; "
        f"{time.perf_counter() - tic:.1f} s)"
    )

    tic = time.perf_counter()
    figures = decomposed_section(DECOMPOSITION.ensure(), report.parent, log=_log)
    link_from_report(
        report,
        report.parent / PAGE,
        "Decomposed final layer (Decomposing the Deep) of ResNet-20 on the digits",
        anchor="decomposed",
        note=f"test accuracy original {100 * figures['original_accuracy']:.2f} %, decomposed "
        f"{100 * figures['decomposed_accuracy']:.2f} % (k = {figures['k']} filters per class); "
        "each filter's {}x{} activation map.".format(*figures["map_size"]),
    )
    _log(f"decomposed-layer page: {(report.parent / PAGE).resolve()} ({time.perf_counter() - tic:.1f} s)")
    _log(f"report: {report.resolve()}")
    archives = ["digits", companion.name, vit.name, "gpt"]
    _log(f"explanation console on these archives: {console_command(archives)}")

"""Equivalence: convert the weights into the other two forms, run one random batch through
all three, compare (every difference is float rounding), then time the three forms."""

from __future__ import annotations

import gradio as gr

from builder import guards, proof, views
from builder.spec import SpecError
from builder.timing import TimingError

from .common import (
    DEVICE,
    DEVICE_LOCK,
    MAX_RUN_S,
    Page,
    clamp_stage,
    confirmed,
    not_run,
    parse_spec_json,
    too_long,
)

TITLE, ID = "Equivalence", "equivalence"
API_NAMES = ("equivalence", "equivalence_confirmed")
INPUTS = ["spec_json", "proof_scope", "stage", "proof_batch", "proof_train", "proof_confirmed"]
OUTPUTS = ["proof_message", "proof_table", "proof_contrast", "proof_chart", "proof_confirm"]


def layout(page: Page) -> None:
    gr.Markdown(
        "Convert this network's weights (random, with random BN statistics) into the other two "
        "forms, run the same random batch through all three in float64 and float32, and "
        "compare: the forms are one function, so every difference is float rounding. Then "
        "the three forms are timed: equal in math, not in speed.", elem_id="proof-intro")
    with gr.Row():
        page.add("proof_scope", gr.Radio([("one block of the stage shown", "block"),
                                          ("whole network", "network")], value="block",
                                         label="What", elem_id="proof-scope"))
        page.add("proof_batch", gr.Number(1, label="Batch", elem_id="proof-batch",
                                          min_width=80))
        page.add("proof_train", gr.Checkbox(False, label="also in train mode (BN on batch "
                                            "statistics)", elem_id="proof-train"))
    with gr.Row():
        page.add("proof_run", gr.Button("Prove forms (a), (b), (c) equal", variant="primary",
                                        elem_id="proof-run"))
        page.add("proof_confirm", gr.Button("Run anyway", visible=False, variant="stop",
                                            elem_id="proof-confirm"))
    page.add("proof_confirmed", gr.Checkbox(False, visible="hidden",
                                            elem_id="proof-confirmed"))
    page.add("proof_message", gr.Markdown(elem_id="proof-message"))
    page.add("proof_table", gr.Dataframe(headers=views.PROOF_HEADERS, interactive=False,
                                         label="max |difference| against the spec's own form",
                                         elem_id="proof-table"))
    page.add("proof_contrast", gr.Markdown(elem_id="proof-contrast"))
    page.add("proof_chart", gr.HTML(elem_id="proof-chart"))


def equivalence(spec_json, scope, stage, batch_size, train_too, confirmed,
                progress=gr.Progress()):  # noqa: B008
    """Prove forms (a), (b), (c) equal: max |difference| per form, dtype and BN mode next
    to the bound, then time the three forms (the contrast)."""
    spec = parse_spec_json(spec_json)
    stage = clamp_stage(spec, stage)
    modes = ("eval", "train") if train_too else ("eval",)
    try:
        batch = views.whole(batch_size, "batch_size")
        # the proof holds the model and one converted copy, in float64
        guards.check(spec, batch, mode="training" if train_too else "inference",
                     dtype_bytes=8, models=2)
        estimate = proof.estimate_seconds(spec, scope, stage, batch, modes)
        too_long(estimate, "proof")
    except (SpecError, ValueError) as exc:  # too_long's refusal is a ValueError
        return {"proof_message": not_run(exc), "proof_confirm": gr.update(visible=False)}
    if estimate > proof.ASK_ABOVE_S and not confirmed:
        return {"proof_message": (
                    f"**The proof would take about {estimate:,.0f} s on the CPU** for "
                    f"{spec.name}. Press *Run anyway*, or prove one block (seconds)."),
                "proof_confirm": gr.update(visible=True,
                                           value=f"Run anyway (about {estimate:,.0f} s)")}
    try:
        with DEVICE_LOCK:
            result = proof.prove(spec, scope, stage, batch, modes=modes, deadline_s=MAX_RUN_S,
                                 progress=lambda fraction, text: progress(fraction, desc=text))
    except TimingError as exc:  # ProofDeadlineError, or the timing contrast's deadline
        return {"proof_message": not_run(exc), "proof_confirm": gr.update(visible=False)}
    return {"proof_message": views.proof_markdown(result) + bounds_markdown(result),
            "proof_table": views.proof_table(result),
            "proof_contrast": views.forms_lesson(result.timings),
            "proof_chart": views.timing_chart(result.timings),
            "proof_confirm": gr.update(visible=False)}


def bounds_markdown(result) -> str:
    """Under the verdict: each bound the table applies (one per dtype and BN mode), then why
    (each reason once)."""
    lines, whys = {}, {}
    for row in result.rows:
        if row.get("bound_text"):
            lines.setdefault(f"- {row['dtype']}, {row['mode']}: {row['bound_text']}", None)
        if row.get("why"):
            whys.setdefault(row["why"], None)
    if not lines:
        return ""
    return ("\n\n**The bounds.**\n\n" + "\n".join(lines)
            + "".join(f"\n\n*Why:* {why}." for why in whys))


equivalence_confirmed = confirmed(equivalence, "The same proof, after its estimate was shown "
                                               "and accepted.")


def wire(page: Page) -> None:
    page.on("proof_run.click", equivalence, INPUTS, OUTPUTS, api_name="equivalence", **DEVICE)
    page.on("proof_confirm.click", equivalence_confirmed, INPUTS, OUTPUTS,
            api_name="equivalence_confirmed", **DEVICE)

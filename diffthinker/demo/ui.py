"""The Gradio page: layout and wiring of ``DemoHandlers`` (which hold all the logic), and the launcher.

Layout, top to bottom: the puzzle (generate from task / level / seed, or upload image + metadata), the solver
settings (samples N, Euler steps, sample seed, selection rule), then the diffusion model's work (the "thinking"
frames of all N candidates with a step scrubber and an animation, the N candidates with their verdicts, the
selected answer) beside the MLLM baseline's answer drawn onto the same puzzle.
"""

from __future__ import annotations

from typing import Any, Callable

import gradio as gr

from ..selection import SELECTION_RULES
from .handlers import OUTPUTS, DemoHandlers
from .puzzles import METADATA_HELP

CSS = """
#status { min-height: 1.5em; }
#verdict h3, #mllm-verdict h3 { margin-top: 0; }
.pixelated img { image-rendering: pixelated; }
"""

INTRO = """# DiffThinker: watch a diffusion model think
A diffusion model solves a puzzle by **editing its image into the solved image**; a pixel-level verifier reads
the drawing back and checks it against the rules. Draw N candidates at once, watch the solution emerge over the
denoising steps, and compare with the MLLM baseline's text answer on the same puzzle."""


def build_app(handlers: DemoHandlers, *, concurrency_limit: int = 1) -> gr.Blocks:
    """The page. ``concurrency_limit``: how many solves run at once (the others wait in the queue)."""
    h = handlers
    s = h.settings
    task0 = h.default_task()
    first = h.task_changed(task0)
    with gr.Blocks(title="DiffThinker demo", analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        c: dict[str, Any] = {}
        c["puzzle"] = gr.State(None)
        c["frames"] = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                task = gr.Dropdown(h.task_choices(), value=task0, label="Task", elem_id="task")
                c["models"] = gr.Markdown(first.get("models", ""), elem_id="models")
                with gr.Tab("Generate", elem_id="tab-generate"):
                    c["levels"] = gr.Dropdown(first["levels"]["choices"], value=first["levels"]["value"],
                                              label="Level", elem_id="level")
                    c["seed"] = gr.Number(0, precision=0, minimum=0, label="Puzzle seed", elem_id="seed")
                    with gr.Row():
                        generate = gr.Button("New puzzle", variant="secondary", elem_id="generate")
                        next_seed = gr.Button("Next seed ➜", elem_id="next-seed")
                with gr.Tab("Upload", elem_id="tab-upload"):
                    gr.Markdown(f"The puzzle image and its metadata: {METADATA_HELP}.")
                    up_image = gr.File(label="Puzzle image (PNG/JPEG)", elem_id="upload-image")
                    up_meta = gr.File(label="Metadata (.txt or .json)", elem_id="upload-metadata")
            with gr.Column(scale=1):
                c["puzzle_image"] = gr.Image(label="Puzzle", type="pil", format="png", interactive=False,
                                             height=320, elem_id="puzzle-image", elem_classes="pixelated")
                c["puzzle_info"] = gr.Markdown(elem_id="puzzle-info")
                c["puzzle_file"] = gr.File(label="Puzzle file (upload it back as metadata)", interactive=False,
                                           elem_id="puzzle-file")
            with gr.Column(scale=1):
                samples = gr.Slider(1, s.max_samples, value=min(4, s.max_samples), step=1, label="Samples N",
                                    elem_id="samples")
                steps = gr.Slider(1, s.max_steps, value=min(20, s.max_steps), step=1, label="Euler steps",
                                  elem_id="steps")
                sample_seed = gr.Number(0, precision=0, minimum=0, label="Sample seed", elem_id="sample-seed")
                select = gr.Radio(list(SELECTION_RULES), value="verifier", label="Selection",
                                  info="verifier: best valid candidate; vote: most common answer; first: sample 0")
                solve = gr.Button("Solve", variant="primary", elem_id="solve")
        c["status"] = gr.Markdown(elem_id="status")
        with gr.Row():
            with gr.Column(scale=3):
                gr.Markdown("## Diffusion model")
                with gr.Row():
                    with gr.Column(scale=1, min_width=240):
                        c["frame_image"] = gr.Image(label="Thinking: clean-image estimates",
                                                    type="pil", format="png", interactive=False, height=300,
                                                    elem_id="frame-image", elem_classes="pixelated")
                        c["frame_slider"] = gr.Slider(0, 1, value=0, step=1, label="Denoising step",
                                                      elem_id="frame-slider")
                    c["animation"] = gr.Image(label="Thinking, animated", type="filepath", interactive=False,
                                              height=300, min_width=200, scale=1, elem_id="animation",
                                              elem_classes="pixelated")
                    with gr.Column(scale=1, min_width=240):
                        c["selected_image"] = gr.Image(label="Selected answer", type="pil", format="png",
                                                       interactive=False, height=300, elem_id="selected-image",
                                                       elem_classes="pixelated")
                c["verdict"] = gr.Markdown(elem_id="verdict")
                c["gallery"] = gr.Gallery(label="All N candidates, each verified", columns=4, format="png",
                                          object_fit="contain", elem_id="candidates",
                                          elem_classes="pixelated")
            with gr.Column(scale=2):
                gr.Markdown("## MLLM baseline")
                c["mllm_image"] = gr.Image(label="Its answer, drawn on the puzzle", type="pil", format="png",
                                           interactive=False, height=300, elem_id="mllm-image")
                c["mllm_verdict"] = gr.Markdown(elem_id="mllm-verdict")
                c["mllm_text"] = gr.Textbox(label="Its text", lines=4, interactive=False, elem_id="mllm-text")

        def wire(fn: Callable[..., dict[str, Any]], keys: tuple[str, ...] = OUTPUTS):
            """``fn``'s dict -> one value per output; keys it leaves out keep their component as it is."""
            outputs = [c[k] for k in keys]

            def run(*args: Any) -> list[Any]:
                out = fn(*args)
                values = []
                for k in keys:
                    if k not in out:
                        values.append(gr.skip())
                    elif k in ("levels", "frame_slider"):
                        values.append(gr.update(**out[k]))
                    else:
                        values.append(out[k])
                return values

            return run, outputs

        def on(event: Callable, fn: Callable[..., dict[str, Any]], inputs: list[Any],
               keys: tuple[str, ...] = OUTPUTS, **kwargs: Any):
            run, outputs = wire(fn, keys)
            return event(run, inputs=inputs, outputs=outputs, **kwargs)

        light = dict(concurrency_limit=4, show_progress="minimal")
        puzzle_inputs = [task, c["levels"], c["seed"]]
        changed = on(task.input, h.task_changed, [task], ("levels", "models", "status"), **light)
        on(changed.then, h.new_puzzle, puzzle_inputs, **light)
        on(generate.click, h.new_puzzle, puzzle_inputs, **light)
        on(c["levels"].input, h.new_puzzle, puzzle_inputs, **light)
        on(c["seed"].submit, h.new_puzzle, puzzle_inputs, **light)
        on(next_seed.click, h.next_puzzle, puzzle_inputs, **light)
        on(up_image.upload, h.upload, [task, up_image, up_meta], **light)
        on(up_meta.upload, h.upload, [task, up_image, up_meta], **light)
        on(solve.click, h.solve, [c["puzzle"], samples, steps, sample_seed, select],
           concurrency_limit=concurrency_limit, concurrency_id="solve")
        on(c["frame_slider"].change, h.scrub, [c["frames"], c["frame_slider"]], ("frame_image", "status"),
           concurrency_limit=8, show_progress="hidden")
        on(demo.load, h.new_puzzle, puzzle_inputs, **light)
    return demo

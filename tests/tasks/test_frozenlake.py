"""FrozenLake (VSP / VSP-Super): generation, pixel-exact rendering, parsing under perturbation, rules, formats."""

from __future__ import annotations

import json
import shutil
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from diffthinker.tasks import ParseFailure, TaskError, get_task, perturb
from diffthinker.tasks.conformance import check_task
from diffthinker.tasks.frozenlake import (LEVELS, FrozenLakeAnswer, FrozenLakeInstance, parse_table, random_map,
                                          shortest_path, table_text)
from diffthinker.tasks.gridpath import MOVES, cells_to_moves, moves_to_cells

TASK = get_task("frozenlake")
FIX = Path(__file__).resolve().parents[1] / "fixtures" / "diffthinker_samples" / "FrozenLake"
SUPER16 = FIX / "16_test"
VSP3 = FIX / "VSP" / "maps" / "level3"
VSP6 = FIX / "VSP" / "maps" / "level6"


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _bin_of(level: str, seed: int) -> tuple[int, float, int]:
    """The bin generate() draws first from the level's rng (mirrors FrozenLakeTask.generate)."""
    cfg = LEVELS[level]
    return TASK.rng(level, seed).choices(cfg.bins, weights=[b[2] for b in cfg.bins])[0]


# --------------------------------------------------------------------------------------------------- contract
@pytest.mark.parametrize("level", ["vsp3", "vsp4", "vsp6", "vsp8", "16", "32"])
def test_conformance(level):
    check_task(TASK, levels=[level], seeds=(0, 1), sizes=TASK.supported_sizes_for(level))


def test_attributes():
    assert TASK.id == "frozenlake-v1"
    assert TASK.default_level == "vsp4"
    assert set(TASK.levels) == {"vsp3", "vsp4", "vsp5", "vsp6", "vsp7", "vsp8", "16", "32"}
    assert TASK.prompt == ("Draw a continuous red line connecting the Start point to the Goal point, "
                           "avoiding all holes.")
    assert TASK.supported_sizes_for("vsp8") == (64, 128, 256, 512, 1024)
    assert TASK.supported_sizes_for("16") == (128, 256, 512, 1024)
    assert TASK.supported_sizes_for("32") == (256, 512, 1024)


def test_generate_deterministic_and_varied():
    for level in ("vsp6", "16"):
        insts = [TASK.generate(level, s) for s in range(12)]
        assert [TASK.generate(level, s) for s in range(12)] == insts
        assert len({TASK.content_hash(i) for i in insts}) == 12
    assert TASK.generate("vsp6", 3) != TASK.generate("vsp5", 3)
    with pytest.raises(TaskError, match="unknown level"):
        TASK.generate("vsp9", 0)
    with pytest.raises(TaskError, match="seed"):
        TASK.generate("vsp4", -1)


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_difficulty_bins_hold(level):
    cfg = LEVELS[level]
    for seed in range(4):
        inst = TASK.generate(level, seed)
        min_moves, p, _ = _bin_of(level, seed)
        moves = TASK.solve(inst).moves
        assert inst.n == cfg.n
        assert inst.start != inst.goal
        assert len(moves) >= min_moves, (level, seed, min_moves, moves)
        assert len(moves) == TASK.verify(inst, TASK.solve(inst)).details["shortest"]


def test_top_bins_are_reachable_and_p_applies():
    import random
    rng = random.Random(7)
    rows = random_map(rng, 8, 0.8, 21)
    assert len(shortest_path(rows)) >= 21
    rows = random_map(rng, 3, 0.8, 4)
    assert len(shortest_path(rows)) >= 4
    # The 32 level's p=0.6 bin: long path, far more holes than the p=0.8 bins.
    seeds = [s for s in range(40) if _bin_of("32", s)[0] == 90][:2]
    assert seeds
    for s in seeds:
        inst = TASK.generate("32", s)
        assert len(TASK.solve(inst).moves) >= 90
        assert 0.25 < len(inst.holes) / 1022 < 0.5
    with pytest.raises(TaskError, match="no 3x3 map"):
        random_map(rng, 3, 0.8, 8, max_tries=200)


def test_bin_weights_follow_32_test_mix():
    counts = {}
    for s in range(400):
        m = _bin_of("32", s)[0]
        counts[m] = counts.get(m, 0) + 1
    assert set(counts) == {1, 14, 27, 90}
    assert 120 < counts[90] < 200  # weight 2 of 5 -> ~160


# --------------------------------------------------------------------------------------------------- rendering
def _table_instance(path: Path) -> FrozenLakeInstance:
    return FrozenLakeInstance(parse_table(path.read_text(), str(path)))


def test_render_reproduces_official_super_images():
    meta = json.loads((SUPER16 / "metadata.json").read_text())
    for stem in ("16_1_0.8_001", "16_33_0.8_002"):
        inst = _table_instance(SUPER16 / "table" / f"{stem}.txt")
        assert np.array_equal(np.asarray(TASK.render(inst, size=512)), _png(SUPER16 / f"{stem}.png"))
        answer = FrozenLakeAnswer(meta[f"{stem}.png"])
        assert np.array_equal(np.asarray(TASK.render(inst, answer, size=512)),
                              _png(SUPER16 / f"{stem}_solution.png"))


@pytest.mark.parametrize("folder,stem,n", [(VSP3, "0", 3), (VSP3, "1", 3), (VSP6, "0", 6)])
def test_render_reproduces_official_vsp_maps(folder, stem, n):
    inst = _table_instance(folder / "table" / f"{stem}.txt")
    official = _png(folder / "img" / f"{stem}.png")
    assert official.shape == (64 * n, 64 * n, 3)
    assert np.array_equal(np.asarray(TASK.render(inst, size=64 * n)), official)
    # At 512 px: the window NEAREST-resized, as gen_image.py writes training images.
    up = np.asarray(Image.fromarray(official).resize((512, 512), Image.Resampling.NEAREST))
    assert np.array_equal(np.asarray(TASK.render(inst, size=512)), up)


def test_render_native_sizes_are_crisp():
    inst = TASK.generate("vsp4", 3)
    window = TASK.render(inst, size=256)
    # Integer multiples of the window are exactly its NEAREST enlargement (sprites and outlines scale alike).
    assert np.array_equal(np.asarray(TASK.render(inst, size=1024)),
                          np.asarray(window.resize((1024, 1024), Image.Resampling.NEAREST)))
    # Any size: no colour that the window does not have (no interpolation blur).
    colours = set(map(tuple, np.asarray(window).reshape(-1, 3)))
    for size in (100, 333, 777):
        img = np.asarray(TASK.render(inst, size=size))
        assert img.shape == (size, size, 3)
        assert set(map(tuple, img.reshape(-1, 3))) <= colours
    # The solution line: pure red, width int(cell / 4) at 512 px.
    sol = np.asarray(TASK.render(inst, TASK.solve(inst), size=512))
    red = (sol == (255, 0, 0)).all(-1)
    r, c = inst.start
    assert red[int((r + 0.5) * 128), int((c + 0.5) * 128)]


def test_render_rejects_bad_arguments():
    inst = TASK.generate("vsp4", 0)
    for size in (4, 5000, 512.0, True):
        with pytest.raises(TaskError, match="size"):
            TASK.render(inst, size=size)
    with pytest.raises(TaskError, match="style"):
        TASK.render(inst, style="pixel-art")


# --------------------------------------------------------------------------------------------------- parsing
def test_official_solutions_verify_and_problems_do_not():
    items = TASK.read_official(SUPER16)
    assert len(items) == 2
    for it in items:
        with Image.open(it.solution_image) as img:
            parsed = TASK.parse(img, it.instance)
        assert not isinstance(parsed, ParseFailure), parsed
        assert TASK.verify(it.instance, parsed).correct
        assert TASK.verify(it.instance, it.answer).correct
        with Image.open(it.problem_image) as img:
            parsed = TASK.parse(img, it.instance)
        assert isinstance(parsed, ParseFailure) or not TASK.verify(it.instance, parsed).correct
    for folder in (VSP3, VSP6):
        for it in TASK.read_official(folder):
            assert TASK.verify(it.instance, it.answer).correct
            assert len(it.answer.moves) == len(TASK.solve(it.instance).moves)
            with Image.open(it.problem_image) as img:
                for im in (img, img.resize((512, 512), Image.Resampling.NEAREST)):
                    parsed = TASK.parse(im, it.instance)
                    assert isinstance(parsed, ParseFailure) or not TASK.verify(it.instance, parsed).correct


_PERTURBATIONS = {
    "jpeg75": lambda im, s: perturb.jpeg(im, 75),
    "noise8": lambda im, s: perturb.gaussian_noise(im, 8.0, s),
    "blur": lambda im, s: perturb.blur(im, 1.0),
    "model_like": lambda im, s: perturb.model_like(im, s),
}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(level=st.sampled_from(["vsp3", "vsp5", "vsp8", "16", "32"]), seed=st.integers(0, 10_000),
       frac=st.floats(0.0, 1.0), kind=st.sampled_from(sorted(_PERTURBATIONS)), noise_seed=st.integers(0, 99))
def test_parse_survives_perturbations(level, seed, frac, kind, noise_seed):
    inst = TASK.generate(level, seed)
    answer = TASK.solve(inst)
    lo = max(64, 8 * inst.n)
    size = int(round(lo + frac * (1024 - lo)))
    img = _PERTURBATIONS[kind](TASK.render(inst, answer, size=size), noise_seed)
    parsed = TASK.parse(img, inst)
    assert not isinstance(parsed, ParseFailure), (level, seed, size, kind, parsed)
    assert TASK.verify(inst, parsed).correct


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), target=st.sampled_from([384, 640, 1000]))
def test_parse_survives_rescaling(seed, target):
    inst = TASK.generate("16", seed)
    img = perturb.model_like(TASK.render(inst, TASK.solve(inst), size=512), seed, size=target)
    parsed = TASK.parse(img, inst)
    assert not isinstance(parsed, ParseFailure) and TASK.verify(inst, parsed).correct, parsed


def _centre(cell, size, n):
    cs = size / n
    return ((cell[1] + 0.5) * cs, (cell[0] + 0.5) * cs)


def _draw_cells(img: Image.Image, n: int, cells, width_frac=0.25) -> Image.Image:
    img = img.copy()
    size = img.size[0]
    ImageDraw.Draw(img).line([_centre(c, size, n) for c in cells], fill=(255, 0, 0),
                             width=max(1, int(size / n * width_frac)), joint="curve")
    return img


def test_red_spill_over_into_neighbours_is_tolerated():
    for level, seed in (("vsp5", 1), ("16", 2), ("vsp8", 4)):
        inst = TASK.generate(level, seed)
        n, size = inst.n, 512
        cs = size / n
        answer = TASK.solve(inst)
        path = moves_to_cells(inst.start, answer.moves)
        on_path = set(path)
        img = TASK.render(inst, answer, size=size)
        d = ImageDraw.Draw(img)
        spilled = 0
        # Red bleeding 20% of a cell deep into every off-path neighbour (the published 2%-of-cell rule would
        # count each of those cells as on the path).
        for r, c in path:
            for dr, dc in MOVES.values():
                nb = (r + dr, c + dc)
                if nb in on_path or not (0 <= nb[0] < n and 0 <= nb[1] < n):
                    continue
                x0, y0 = c * cs, r * cs
                if dr == 1:
                    box = (x0 + 0.3 * cs, y0 + cs, x0 + 0.7 * cs, y0 + 1.2 * cs)
                elif dr == -1:
                    box = (x0 + 0.3 * cs, y0 - 0.2 * cs, x0 + 0.7 * cs, y0)
                elif dc == 1:
                    box = (x0 + cs, y0 + 0.3 * cs, x0 + 1.2 * cs, y0 + 0.7 * cs)
                else:
                    box = (x0 - 0.2 * cs, y0 + 0.3 * cs, x0, y0 + 0.7 * cs)
                d.rectangle(box, fill=(255, 0, 0))
                spilled += 1
        assert spilled > 0
        parsed = TASK.parse(perturb.model_like(img, seed), inst)
        assert not isinstance(parsed, ParseFailure), parsed
        assert TASK.verify(inst, parsed).correct


def _route_through_hole(inst: FrozenLakeInstance):
    """A simple S -> hole -> G route (the two legs share only the hole), or None."""
    n = inst.n
    for hole in inst.holes:
        def leg(a, b, banned):
            prev = {a: None}
            q = deque([a])
            while q:
                u = q.popleft()
                if u == b:
                    out = [u]
                    while prev[out[-1]] is not None:
                        out.append(prev[out[-1]])
                    return out[::-1]
                for dr, dc in MOVES.values():
                    v = (u[0] + dr, u[1] + dc)
                    if (0 <= v[0] < n and 0 <= v[1] < n and v not in prev and v not in banned
                            and (inst.rows[v[0]][v[1]] != "H" or v == hole)):
                        prev[v] = u
                        q.append(v)
            return None
        first = leg(inst.start, hole, {inst.goal})
        if first is None:
            continue
        second = leg(hole, inst.goal, set(first[:-1]))
        if second is not None:
            return first + second[1:]
    return None


@pytest.mark.parametrize("level,seed", [("vsp4", 0), ("vsp6", 1), ("16", 0), ("32", 1)])
def test_mutations_never_verify(level, seed):
    inst = TASK.generate(level, seed)
    n = inst.n
    answer = TASK.solve(inst)
    path = moves_to_cells(inst.start, answer.moves)
    base = TASK.render(inst, size=512)

    def verdict_of(img):
        parsed = TASK.parse(perturb.model_like(img, seed), inst)
        return parsed, (not isinstance(parsed, ParseFailure) and TASK.verify(inst, parsed).correct)

    # 1. Through a hole.
    route = _route_through_hole(inst)
    assert route is not None
    parsed, ok = verdict_of(_draw_cells(base, n, route))
    assert not ok, ("through a hole", parsed)
    assert isinstance(parsed, FrozenLakeAnswer)
    assert not TASK.verify(inst, parsed).valid  # read as drawn, rejected by the rules
    # 2. Stopping one cell short of the goal.
    if len(path) > 2:
        parsed, ok = verdict_of(_draw_cells(base, n, path[:-1]))
        assert not ok, ("one short", parsed)
    # 3. An extra branch off the correct path into a free cell.
    on_path = set(path)
    branch = None
    for cell in path[1:-1] or path[:1]:
        for dr, dc in MOVES.values():
            nb = (cell[0] + dr, cell[1] + dc)
            if 0 <= nb[0] < n and 0 <= nb[1] < n and nb not in on_path and inst.rows[nb[0]][nb[1]] == "F":
                branch = (cell, nb)
                break
        if branch:
            break
    assert branch is not None
    img = _draw_cells(TASK.render(inst, answer, size=512), n, list(branch))
    parsed, ok = verdict_of(img)
    assert not ok, ("extra branch", parsed)
    assert isinstance(parsed, ParseFailure)


def test_hand_made_hole_crossing_is_read_as_drawn():
    inst = FrozenLakeInstance(("SHFG", "FFFF", "FFFF", "FFFF"))
    assert len(TASK.solve(inst).moves) == 5  # around the hole
    img = _draw_cells(TASK.render(inst, size=512), 4, moves_to_cells(inst.start, "RRR"))
    parsed = TASK.parse(perturb.model_like(img, 0), inst)
    assert parsed == FrozenLakeAnswer("RRR")
    v = TASK.verify(inst, parsed)
    assert not v.correct and not v.valid and "hole" in v.reason


def test_parse_junk():
    inst = TASK.generate("vsp4", 0)
    for img in (Image.new("RGB", (256, 256), (255, 0, 0)), Image.new("RGB", (256, 256), (255, 255, 255)),
                Image.new("L", (300, 200), 0), Image.new("RGB", (3, 3))):
        out = TASK.parse(img, inst)
        assert isinstance(out, ParseFailure) or not TASK.verify(inst, out).correct
    assert isinstance(TASK.parse(Image.new("CMYK", (64, 64)), inst), ParseFailure)
    with pytest.raises(TaskError):
        TASK.parse(Image.new("RGB", (64, 64)), "not an instance")


# --------------------------------------------------------------------------------------------------- rules
def test_verify_rules_and_scores():
    inst = FrozenLakeInstance(("SFF", "FHF", "FFG"))
    ok = TASK.verify(inst, FrozenLakeAnswer("RRDD"))
    assert ok.correct and ok.valid and ok.score == 1.0 and ok.details["optimal"]
    longer = TASK.verify(inst, FrozenLakeAnswer("RLRRDD"))  # any route counts, not only a shortest one
    assert longer.correct and not longer.details["optimal"]
    after = TASK.verify(inst, FrozenLakeAnswer("RRDDUUL"))  # the episode ends at the goal
    assert after.correct and after.details["ignored_after_goal"] == 3
    hole = TASK.verify(inst, FrozenLakeAnswer("DRR"))
    assert not hole.valid and not hole.correct and "hole" in hole.reason
    assert hole.score == 0.25 * (1 - 3 / 4)  # progress up to the last legal cell (1, 0), weight 0.25
    edge = TASK.verify(inst, FrozenLakeAnswer("URRDD"))  # published: the bump is a no-op
    assert not edge.valid and not edge.correct and "leaves" in edge.reason
    assert edge.details["published_correct"] and not hole.details["published_correct"]
    short = TASK.verify(inst, FrozenLakeAnswer("RRD"))
    assert short.valid and not short.correct and 0.0 < short.score <= 0.5
    shorter = TASK.verify(inst, FrozenLakeAnswer("R"))
    assert shorter.score < short.score
    empty = TASK.verify(inst, FrozenLakeAnswer(""))
    assert empty.valid and not empty.correct and empty.score == 0.0
    assert TASK.verify(inst, ParseFailure("x")).score == 0.0
    with pytest.raises(TaskError, match="U, D, L, R"):
        FrozenLakeAnswer("RRX")


def test_no_hundred_step_cap():
    # A serpentine 16x16 map whose only path takes far more than 100 moves.
    rows = []
    for r in range(16):
        if r % 2 == 0:
            rows.append("F" * 16)
        elif r % 4 == 1:
            rows.append("H" * 15 + "F")
        else:
            rows.append("F" + "H" * 15)
    rows[0] = "S" + rows[0][1:]
    rows[15] = rows[15][:15] + "G"
    inst = FrozenLakeInstance(tuple(rows))
    moves = TASK.solve(inst).moves
    assert len(moves) > 100
    v = TASK.verify(inst, FrozenLakeAnswer(moves))
    assert v.correct and v.details["published_correct"]


def test_instance_validation():
    for rows in (("SF", "FF"), ("SG", "GF"), ("SGF", "FFF"), ("SX", "FG"), ("S",), ()):
        with pytest.raises(TaskError):
            FrozenLakeInstance(rows)
    with pytest.raises(TaskError, match="no path"):
        TASK.solve(FrozenLakeInstance(("SH", "HG")))
    inst = FrozenLakeInstance(("SFH", "FHF", "FFG"))
    assert (inst.n, inst.start, inst.goal, inst.holes) == (3, (0, 0), (2, 2), ((0, 2), (1, 1)))
    assert FrozenLakeInstance.from_json(inst.to_json()) == inst


# --------------------------------------------------------------------------------------------------- text
def test_text_side():
    inst = _table_instance(VSP6 / "table" / "0.txt")
    assert TASK.to_text(inst) == (VSP6 / "table" / "0.txt").read_text().strip()
    assert TASK.to_text(_table_instance(SUPER16 / "table" / "16_1_0.8_001.txt")) == \
        (SUPER16 / "table" / "16_1_0.8_001.txt").read_text()
    answer = TASK.solve(inst)
    assert TASK.parse_text(TASK.answer_to_text(answer), inst) == answer
    cases = {
        "The path is R R D D.": "RRDD",
        "Moves: U, L, L -> D": "ULLD",
        "First try: RRR\nFinal answer: LUULLD": "LUULLD",
        "**Answer:** `DDR`": "DDR",
    }
    for text, moves in cases.items():
        assert TASK.parse_text(text) == FrozenLakeAnswer(moves), text
    for junk in ("I cannot solve this.", "", "Go Right then Down", "UDRLX", 42):
        assert isinstance(TASK.parse_text(junk), ParseFailure), junk


def test_table_round_trip_and_errors():
    inst = TASK.generate("vsp5", 2)
    assert parse_table(table_text(inst.rows)) == inst.rows
    with pytest.raises(TaskError, match="symbol"):
        parse_table("| | Col 1 | Col 2 |\n| Row 1 | @ | X |\n| Row 2 | _ | * |")
    with pytest.raises(TaskError, match="header"):
        parse_table("| Row 1 | @ | * |")
    with pytest.raises(TaskError, match="rows"):
        parse_table("| | Col 1 | Col 2 |\n| Row 1 | @ | * |")


# --------------------------------------------------------------------------------------------------- official I/O
def test_read_official_layouts():
    items = TASK.read_official(SUPER16)
    assert [it.item_id for it in items] == ["16_1_0.8_001", "16_33_0.8_002"]
    assert all(it.level == "16" and it.solution_image is not None for it in items)
    assert items[0].answer == FrozenLakeAnswer("DDDRDRDDRDRRRDDDD")
    vsp = TASK.read_official(VSP3)
    assert [it.item_id for it in vsp] == ["level3_0", "level3_1"]
    assert all(it.level == "vsp3" and it.solution_image is None for it in vsp)
    assert vsp[1].answer == FrozenLakeAnswer("UR")
    assert vsp[0].problem_image == VSP3 / "img" / "0.png"
    assert TASK.read_official(VSP6)[0].level == "vsp6"
    for folder in (SUPER16, VSP3, VSP6):
        assert TASK.matches_official(folder)
    assert not TASK.matches_official(FIX)


def test_write_read_round_trip(tmp_path):
    official = TASK.read_official(SUPER16) + TASK.read_official(VSP3)
    items = [(it.item_id, it.instance, it.answer) for it in official]
    items.append(("32_90_0.6_001", TASK.generate("32", 1), TASK.solve(TASK.generate("32", 1))))
    out = tmp_path / "FrozenLake" / "mixed"
    TASK.write_official(items, out)
    back = TASK.read_official(out)
    assert [(it.item_id, it.instance, it.answer) for it in back] == sorted(items, key=lambda t: t[0])
    assert [it.level for it in back] == ["16", "16", "32", "vsp3", "vsp3"]
    # The 16_test items are rewritten byte-for-byte in pixels, and every written solution parses back.
    for it in back:
        if it.item_id.startswith("16_"):
            assert np.array_equal(_png(it.problem_image), _png(SUPER16 / f"{it.item_id}.png"))
            assert np.array_equal(_png(it.solution_image), _png(SUPER16 / f"{it.item_id}_solution.png"))
        with Image.open(it.solution_image) as img:
            assert TASK.verify(it.instance, TASK.parse(img, it.instance)).correct
    assert json.loads((out / "metadata.json").read_text())["16_1_0.8_001.png"] == "DDDRDRDDRDRRRDDDD"
    with pytest.raises(TaskError, match="duplicate"):
        TASK.write_official(items[:1] * 2, tmp_path / "dup")
    with pytest.raises(TaskError, match="safe file stem"):
        TASK.write_official([("../evil", items[0][1], items[0][2])], tmp_path / "evil")


def test_read_official_rejects_other_layouts(tmp_path):
    with pytest.raises(TaskError, match="not a FrozenLake folder"):
        TASK.read_official(tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(SUPER16, bad)
    (bad / "metadata.json").write_text("{not json")
    with pytest.raises(TaskError, match="not valid JSON"):
        TASK.read_official(bad)
    (bad / "metadata.json").write_text('{"16_1_0.8_001.png": "RRZ"}')
    with pytest.raises(TaskError, match="U, D, L, R"):
        TASK.read_official(bad)
    (bad / "metadata.json").unlink()
    (bad / "stray.png").write_bytes((bad / "16_1_0.8_001.png").read_bytes())
    with pytest.raises(TaskError, match="no map table"):
        TASK.read_official(bad)
    (bad / "stray.png").unlink()
    (bad / "table" / "16_1_0.8_001.txt").write_text("| | Col 1 |\n| Row 1 | ? |")
    with pytest.raises(TaskError):
        TASK.read_official(bad)


def test_path_helpers_agree():
    inst = TASK.generate("16", 4)
    moves = TASK.solve(inst).moves
    cells = moves_to_cells(inst.start, moves)
    assert cells[-1] == inst.goal and cells_to_moves(cells) == moves
    assert all(inst.rows[r][c] != "H" for r, c in cells)


def test_clean_renders_parse_below_the_perturbation_floor():
    for level, sizes in (("16", (64,)), ("32", (64, 128, 200))):
        inst = TASK.generate(level, 3)
        answer = TASK.solve(inst)
        for size in sizes:
            assert size < TASK.supported_sizes_for(level)[0]
            parsed = TASK.parse(TASK.render(inst, answer, size=size), inst)
            assert parsed == answer, (level, size, parsed)

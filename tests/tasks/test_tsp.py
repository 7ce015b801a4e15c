"""Tests of the TSP task (diffthinker/tasks/tsp.py): conformance, generation, Held-Karp, official samples,
parser robustness and mutations, verify rules, text side."""

from __future__ import annotations

import itertools
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from diffthinker.tasks import Instance, ParseFailure, TaskError, get_task
from diffthinker.tasks.conformance import check_task
from diffthinker.tasks.perturb import blur, gaussian_noise, jpeg, model_like
from diffthinker.tasks.tsp import (LEVELS, TspAnswer, TspInstance, TspTask, geometry, held_karp, tour_length)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diffthinker_samples" / "TSP" / "12_test"
TASK: TspTask = get_task("tsp")
ALL_LEVELS = list(LEVELS)


# --------------------------------------------------------------------------------------------------- helpers
def _edges(tour, closed=True):
    pairs = list(zip(tour, tour[1:] + tour[:1])) if closed else list(zip(tour, tour[1:]))
    return [(min(a, b), max(a, b)) for a, b in pairs]


def _draw(inst, tour, size, *, closed=True, width=None, base=None):
    """The instance's problem image with a red polyline through ``tour`` (drawn like the renderer does)."""
    img = base.copy() if base is not None else TASK.render(inst, size=size)
    geo = geometry(inst.grid, size)
    pts = [geo.centre(inst.cities[k]) for k in tour]
    if closed:
        pts = pts + pts[:1]
    ImageDraw.Draw(img).line(pts, fill=(255, 0, 0), width=width or geo.line_width, joint="curve")
    return img


def _seg_dist(p, a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0, 1)
    return np.hypot(*(p - (a + t[:, None] * ab)).T)


def _ambiguous(inst, segs, size) -> bool:
    """Whether pixels alone could read the drawing of ``segs`` otherwise: a segment passes over or next to a
    city that is not its end, or an undrawn pair runs within about a line width of the drawing for most of its
    length without lying on it (a sliver). Mutation tests skip these: their "wrong" drawing can be
    pixel-identical to a right one."""
    geo = geometry(inst.grid, size)
    # The parser counts a pair as drawn when 90% of its samples find ink within about a line width.
    tol = (geo.line_width + 2.0) / geo.cs
    cities = np.asarray(inst.cities, float)
    n = len(cities)
    drawn = set(segs)
    for a, b in drawn:
        for k in range(n):
            if k not in (a, b) and _seg_dist(cities[k:k + 1], cities[a], cities[b])[0] < 0.35 + tol:
                return True
    for a, b in itertools.combinations(range(n), 2):
        if (a, b) in drawn:
            continue
        length = np.hypot(*(cities[b] - cities[a]))
        t = np.linspace(0.35 / length, 1 - 0.35 / length, 24)
        pts = cities[a] + t[:, None] * (cities[b] - cities[a])
        d = np.min([_seg_dist(pts, cities[u], cities[v]) for u, v in drawn], axis=0)
        # (A pair lying exactly along drawn segments, d ~ 0, is a collinear sub-segment: genuinely drawn, and
        # the parser must read it right, so it is not skipped.)
        if (d < tol).mean() >= 0.8 and d.max() > 0.05:
            return True
    return False


def _correct(inst, img) -> bool:
    ans = TASK.parse(img, inst)
    return not isinstance(ans, ParseFailure) and TASK.verify(inst, ans).correct


# --------------------------------------------------------------------------------------------------- contract
def test_conformance_small_levels_all_sizes():
    check_task(TASK, levels=["6", "8"], seeds=(0, 1), sizes=(64, 128, 256, 512, 1024))


def test_conformance_published_levels():
    check_task(TASK, levels=["12", "15", "18"], seeds=(0, 1), sizes=TASK.supported_sizes_for("12")[:1] + (512,))


def test_attributes():
    assert TASK.id == "tsp-v1"
    assert TASK.prompt == "Connect all points with red line segments to form the shortest closed loop."
    assert TASK.default_level == "6" and set(LEVELS) == {"6", "8", "12", "15", "18"}
    assert all(LEVELS[k].grid == 16 for k in ("12", "15", "18"))
    assert TASK.supported_sizes_for("6")[0] == 64 and TASK.supported_sizes_for("18")[0] == 128
    assert TASK.matches_official(FIXTURES)
    assert not TASK.matches_official(Path("/data/Maze/12_test"))


# --------------------------------------------------------------------------------------------------- generation
def test_determinism_and_uniqueness():
    for level in ("6", "12"):
        insts = [TASK.generate(level, s) for s in range(40)]
        assert insts == [TASK.generate(level, s) for s in range(40)]
        assert len({TASK.content_hash(i) for i in insts}) == 40
    assert TASK.generate("12", 3) != TASK.generate("15", 3)


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_level_constraints(level):
    cfg = LEVELS[level]
    for seed in range(8):
        inst = TASK.generate(level, seed)
        assert inst.grid == cfg.grid and len(inst.cities) == cfg.n_cities
        assert len(set(inst.cities)) == cfg.n_cities
        assert all(0 <= x < cfg.grid and 0 <= y < cfg.grid for x, y in inst.cities)
    # The published optimum statistics (ref §2): 12 cities 34.4..62.1, 18 cities 48.2..71.0 grid units.
    if level in ("12", "18"):
        lengths = [TASK.optimum(TASK.generate(level, s)) for s in range(6)]
        lo, hi = (30, 70) if level == "12" else (42, 78)
        assert all(lo <= x <= hi for x in lengths), lengths


def test_bad_levels_seeds_and_instances():
    with pytest.raises(TaskError, match="unknown level"):
        TASK.generate("7", 0)
    with pytest.raises(TaskError, match="seed"):
        TASK.generate("6", -1)
    with pytest.raises(TaskError, match="distinct"):
        TspInstance(grid=8, cities=((1, 1), (2, 2), (1, 1)))
    with pytest.raises(TaskError, match="city 1"):
        TspInstance(grid=8, cities=((1, 1), (8, 2), (3, 3)))
    with pytest.raises(TaskError, match="3..20"):
        TspInstance(grid=8, cities=((1, 1), (2, 2)))
    with pytest.raises(TaskError, match="grid"):
        TspInstance(grid=1, cities=((0, 0), (0, 0), (0, 0)))
    with pytest.raises(TaskError):
        TspAnswer(tour=(0, "1", 2))


# --------------------------------------------------------------------------------------------------- solver
def test_held_karp_matches_brute_force():
    for seed in range(12):
        inst = TASK.generate("8" if seed % 2 else "6", seed)
        n = len(inst.cities)
        brute = min(tour_length(inst.cities, (0,) + p) for p in itertools.permutations(range(1, n)))
        assert TASK.optimum(inst) == pytest.approx(brute, abs=1e-9)
        tour = TASK.solve(inst).tour
        assert tour[0] == 0 and sorted(tour) == list(range(n))


def test_held_karp_on_known_instances():
    # A square's corners: optimum 4 whatever the listing order; a line of cities: twice its span.
    square = np.array([[0, 0], [1, 1], [0, 1], [1, 0]], float)
    dist = np.hypot(*(square[:, None] - square[None]).transpose(2, 0, 1))
    assert tour_length([tuple(p) for p in square], held_karp(dist)) == pytest.approx(4.0)
    line = TspInstance(grid=16, cities=((0, 0), (5, 0), (2, 0), (9, 0), (1, 0)))
    assert TASK.optimum(line) == pytest.approx(18.0)


def test_optimum_never_beaten_by_random_tours():
    rng = random.Random(0)
    inst = TASK.generate("18", 0)
    opt = TASK.optimum(inst)
    for _ in range(300):
        rest = list(range(1, 18))
        rng.shuffle(rest)
        assert tour_length(inst.cities, [0] + rest) >= opt - 1e-9


# --------------------------------------------------------------------------------------------------- verify
def test_any_optimal_tour_rotation_and_direction_verifies():
    inst = TASK.generate("12", 5)
    tour = list(TASK.solve(inst).tour)
    for k in range(len(tour)):
        for t in (tour[k:] + tour[:k], list(reversed(tour[k:] + tour[:k]))):
            v = TASK.verify(inst, TspAnswer(tuple(t)))
            assert v.correct and v.valid and v.score == 1.0 and v.details["gap"] == pytest.approx(0, abs=1e-12)


@settings(max_examples=15, deadline=None)
@given(level=st.sampled_from(ALL_LEVELS), seed=st.integers(0, 10_000), data=st.data())
def test_verify_properties(level, seed, data):
    """Any rotation/direction of the optimum is correct; a random permutation is valid, and correct exactly
    when it is as short as the optimum; dropping or repeating a city makes it invalid."""
    inst = TASK.generate(level, seed)
    n = len(inst.cities)
    opt = list(TASK.solve(inst).tour)
    k = data.draw(st.integers(0, n - 1))
    rotated = opt[k:] + opt[:k]
    if data.draw(st.booleans()):
        rotated.reverse()
    assert TASK.verify(inst, TspAnswer(tuple(rotated))).correct
    perm = data.draw(st.permutations(range(n)))
    v = TASK.verify(inst, TspAnswer(tuple(perm)))
    assert v.valid and v.correct == (tour_length(inst.cities, perm) <= TASK.optimum(inst) + 1e-6)
    assert 0 < v.score <= 1 and (v.score == 1.0) == v.correct
    assert not TASK.verify(inst, TspAnswer(tuple(perm[:-1]))).valid
    assert not TASK.verify(inst, TspAnswer(tuple(perm[:-1]) + (perm[0],))).valid


def test_non_optimal_valid_tours_are_valid_not_correct():
    rng = random.Random(1)
    for seed in range(5):
        inst = TASK.generate("8", seed)
        opt = TASK.optimum(inst)
        for _ in range(10):
            tour = list(range(8))
            rng.shuffle(tour)
            v = TASK.verify(inst, TspAnswer(tuple(tour)))
            assert v.valid
            length = tour_length(inst.cities, tour)
            assert v.correct == (length <= opt + 1e-6)
            assert v.score == pytest.approx(min(1.0, opt / length))
            assert v.details["length"] == pytest.approx(length) and v.details["optimum"] == pytest.approx(opt)
            if not v.correct:
                assert v.score < 1.0 and v.details["gap"] > 0


@pytest.mark.parametrize("tour", [(0, 1, 2, 3, 4), (0, 1, 2, 3, 4, 5, 0), (0, 1, 2, 3, 3, 5), (0, 1, 2, 3, 4, 6),
                                  ()])
def test_invalid_tours(tour):
    inst = TASK.generate("6", 0)
    v = TASK.verify(inst, TspAnswer(tour))
    assert not v.valid and not v.correct and v.score == 0.0 and v.reason


def test_verify_rejects_wrong_types():
    inst = TASK.generate("6", 0)
    with pytest.raises(TaskError):
        TASK.verify(inst, "0,1,2")
    with pytest.raises(TaskError):
        TASK.verify(Instance(), TASK.solve(inst))
    assert not TASK.verify(inst, ParseFailure("x")).valid


# --------------------------------------------------------------------------------------------------- official
def _official_items():
    return TASK.read_official(FIXTURES)


def test_read_official_samples():
    items = _official_items()
    assert [it.item_id for it in items] == ["16_12_001", "16_12_002"]
    first = items[0]
    assert first.level == "12" and first.instance.grid == 16
    assert first.instance.cities[:3] == ((8, 11), (7, 2), (11, 1))
    assert first.problem_image.name == "16_12_001.png" and first.solution_image.name == "16_12_001_solution.png"
    assert TASK.answer_to_text(first.answer, first.instance) == json.loads(
        (FIXTURES / "path.json").read_text())["16_12_001"]


def test_render_reproduces_official_pngs():
    for it in _official_items():
        for ans, path in ((None, it.problem_image), (it.answer, it.solution_image)):
            ours = np.asarray(TASK.render(it.instance, ans, size=512))
            theirs = np.asarray(Image.open(path).convert("RGB"))
            assert ours.shape == theirs.shape and np.array_equal(ours, theirs), path.name


def test_official_images_verify():
    for it in _official_items():
        assert TASK.verify(it.instance, it.answer).correct
        sol = TASK.parse(Image.open(it.solution_image), it.instance)
        assert not isinstance(sol, ParseFailure) and TASK.verify(it.instance, sol).correct
        prob = TASK.parse(Image.open(it.problem_image), it.instance)
        assert isinstance(prob, ParseFailure) or not TASK.verify(it.instance, prob).correct
        # Also after model-like damage and at other sizes.
        for size in (256, 512, 1024):
            img = model_like(Image.open(it.solution_image), seed=size, size=size)
            assert _correct(it.instance, img)


def test_write_read_official_round_trip(tmp_path):
    items = _official_items()
    out = tmp_path / "TSP" / "12_test"
    TASK.write_official([(it.item_id, it.instance, it.answer) for it in items], out)
    back = TASK.read_official(out)
    assert [(b.item_id, b.level, b.instance, b.answer) for b in back] == \
        [(a.item_id, a.level, a.instance, a.answer) for a in items]
    for it in items:  # byte-identical text files, pixel-identical images, same ground truth
        assert (out / f"{it.item_id}.txt").read_bytes() == (FIXTURES / f"{it.item_id}.txt").read_bytes()
        assert np.array_equal(np.asarray(Image.open(out / f"{it.item_id}_solution.png").convert("RGB")),
                              np.asarray(Image.open(it.solution_image).convert("RGB")))
    assert json.loads((out / "path.json").read_text()) == json.loads((FIXTURES / "path.json").read_text())
    # Generated items of every level round-trip too (at another size).
    gen = [(f"x_{lvl}_{s:03d}", TASK.generate(lvl, s), TASK.solve(TASK.generate(lvl, s)))
           for lvl in ("6", "18") for s in range(2)]
    TASK.write_official(gen, tmp_path / "gen", size=256)
    back = TASK.read_official(tmp_path / "gen")
    assert [(b.item_id, b.instance, b.answer) for b in back] == sorted(gen)
    assert Image.open(back[0].problem_image).size == (256, 256)


def test_read_official_errors(tmp_path):
    with pytest.raises(TaskError, match="not found"):
        TASK.read_official(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TaskError, match="no <id>.txt"):
        TASK.read_official(empty)
    bad = tmp_path / "bad"
    shutil.copytree(FIXTURES, bad)
    (bad / "16_12_001.txt").write_text("16 12\n1 2\n")
    with pytest.raises(TaskError, match="16_12_001.txt"):
        TASK.read_official(bad)
    (bad / "16_12_001.txt").write_text("sixteen twelve\n")
    with pytest.raises(TaskError, match="16_12_001.txt"):
        TASK.read_official(bad)
    shutil.copy(FIXTURES / "16_12_001.txt", bad / "16_12_001.txt")
    (bad / "path.json").write_text('{"16_12_001": "(0,0),(1,1)"}')
    with pytest.raises(TaskError, match="path"):
        TASK.read_official(bad)
    (bad / "path.json").write_text("[1, 2")
    with pytest.raises(TaskError, match="JSON"):
        TASK.read_official(bad)
    (bad / "path.json").unlink()
    (bad / "16_12_002.png").unlink()
    with pytest.raises(TaskError, match="problem image"):
        TASK.read_official(bad)
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "a.txt").write_text("16 5\n0 0\n1 1\n2 2\n3 3\n4 4\n")
    (odd / "a.png").write_bytes(b"")
    with pytest.raises(TaskError, match="match no tsp-v1 level"):
        TASK.read_official(odd)
    with pytest.raises(TaskError, match="file stem"):
        TASK.write_official([("../x", TASK.generate("6", 0), TASK.solve(TASK.generate("6", 0)))], tmp_path / "w")


# --------------------------------------------------------------------------------------------------- render
def test_render_sizes_are_native_and_crisp():
    inst = TASK.generate("6", 2)
    ans = TASK.solve(inst)
    palette = {(255, 255, 255), (224, 224, 224), (0, 0, 0), (255, 255, 0), (0, 0, 255), (255, 0, 0)}
    for size in (64, 100, 1024):
        img = TASK.render(inst, ans, size=size)
        assert img.size == (size, size) and img.mode == "RGB"
        packed = np.asarray(img).astype(np.int32) @ np.array([1 << 16, 1 << 8, 1])
        colours = {(int(c) >> 16, (int(c) >> 8) & 255, int(c) & 255) for c in np.unique(packed)}
        assert colours <= palette, colours - palette          # no resampling blend anywhere
        assert (255, 0, 0) in colours and (255, 255, 0) in colours
    with pytest.raises(TaskError):
        TASK.render(inst, size=8)
    with pytest.raises(TaskError):
        TASK.render(inst, TspAnswer((0, 9)), size=64)
    with pytest.raises(TaskError):
        TASK.render(inst, style="photo")


# --------------------------------------------------------------------------------------------------- parser
PERTURBATIONS = ("model_like", "jpeg", "noise", "blur", "rescaled_512")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(level=st.sampled_from(ALL_LEVELS), seed=st.integers(0, 10_000),
       size=st.one_of(st.sampled_from((64, 128, 256, 512, 1024)), st.integers(64, 1024)),
       kind=st.sampled_from(PERTURBATIONS))
def test_parse_survives_perturbations(level, seed, size, kind):
    sizes = TASK.supported_sizes_for(level)
    size = max(size, sizes[0])          # 16-grid levels are guaranteed from 128 px
    inst = TASK.generate(level, seed)
    ans = TASK.solve(inst)
    img = TASK.render(inst, ans, size=size)
    img = {"model_like": lambda: model_like(img, seed=seed),
           "jpeg": lambda: jpeg(img, 75),
           "noise": lambda: gaussian_noise(img, 8.0, seed),
           "blur": lambda: blur(img, 1.0),
           # a 512 px image resized (what a resized model output looks like), then damaged; guaranteed while
           # the line keeps >= 2 px: down to 128 px for the 8-grid, 256 px for the 16-grid
           "rescaled_512": lambda: model_like(TASK.render(inst, ans, size=512), seed=seed,
                                              size=max(size, 2 * sizes[0])),
           }[kind]()
    parsed = TASK.parse(img, inst)
    assert not isinstance(parsed, ParseFailure), parsed
    assert TASK.verify(inst, parsed).correct


@settings(max_examples=10, deadline=None)
@given(level=st.sampled_from(["8", "15"]), seed=st.integers(0, 10_000), w=st.integers(200, 700),
       h=st.integers(200, 700))
def test_parse_non_square_images(level, seed, w, h):
    inst = TASK.generate(level, seed)
    img = TASK.render(inst, TASK.solve(inst), size=512).resize((w, h), Image.Resampling.BILINEAR)
    assert _correct(inst, model_like(img, seed=seed))


def test_parse_tolerates_spill_over():
    """Correct drawings with a line twice as thick, and red blobs bulging off the line, still read."""
    for level, size in (("6", 256), ("8", 512), ("12", 512), ("18", 1024)):
        for seed in range(3):
            inst = TASK.generate(level, seed)
            tour = TASK.solve(inst).tour
            geo = geometry(inst.grid, size)
            assert _correct(inst, model_like(_draw(inst, tour, size, width=2 * geo.line_width), seed=seed))
            img = _draw(inst, tour, size)
            d = ImageDraw.Draw(img)
            rng = random.Random(seed)
            for a, b in _edges(list(tour))[:6]:
                (x0, y0), (x1, y1) = geo.centre(inst.cities[a]), geo.centre(inst.cities[b])
                t = rng.uniform(0.3, 0.7)
                r = geo.line_width * 1.2
                cx, cy = x0 + t * (x1 - x0) + rng.uniform(-1, 1) * r / 2, y0 + t * (y1 - y0)
                d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255, 0, 0))
            assert _correct(inst, model_like(img, seed=seed))


def test_collinear_cities_prefer_the_shorter_decomposition():
    # Cities in a row: drawing A-B-C-D-... along the row also covers A-C, A-D, ...; the tour read is the
    # optimal one through every intermediate city.
    inst = TspInstance(grid=8, cities=((1, 2), (3, 2), (5, 2), (7, 2), (4, 6)))
    tour = TASK.solve(inst).tour
    for size in (64, 256, 512):
        parsed = TASK.parse(TASK.render(inst, TASK.solve(inst), size=size), inst)
        assert parsed == TspAnswer(tour) and TASK.verify(inst, parsed).correct


MUTATION_CASES = [(lvl, size, pert) for lvl, size in (("6", 256), ("8", 512), ("12", 512), ("15", 512),
                                                       ("18", 512)) for pert in (False, True)] + [("18", 1024, False)]


@pytest.mark.parametrize("level,size,pert", MUTATION_CASES)
def test_mutations(level, size, pert):
    """Swapped cities read as the drawn tour (verify then judges it); a missing edge or an extra chord is
    never correct. Pixel-ambiguous drawings (see _ambiguous) are skipped; at least some cases must run."""
    damage = (lambda im, s: model_like(im, seed=s)) if pert else (lambda im, s: im)
    ran = {"swap": 0, "remove": 0, "chord": 0}
    for seed in range(30):
        if min(ran.values()) >= 3:
            break
        inst = TASK.generate(level, seed)
        tour = list(TASK.solve(inst).tour)
        n = len(tour)
        rng = random.Random(seed)
        # Reroute: swap two cities.
        i, j = rng.sample(range(1, n), 2)
        swapped = tour[:]
        swapped[i], swapped[j] = swapped[j], swapped[i]
        if not _ambiguous(inst, _edges(swapped), size):
            ran["swap"] += 1
            parsed = TASK.parse(damage(_draw(inst, swapped, size), seed), inst)
            assert not isinstance(parsed, ParseFailure), parsed
            assert set(_edges(list(parsed.tour))) == set(_edges(swapped))
            truth = TASK.verify(inst, TspAnswer(tuple(swapped)))
            assert TASK.verify(inst, parsed).correct == truth.correct
        # Remove one edge: an open path.
        k = rng.randrange(n)
        path = tour[k:] + tour[:k]
        if not _ambiguous(inst, _edges(path, closed=False), size):
            ran["remove"] += 1
            parsed = TASK.parse(damage(_draw(inst, path, size, closed=False), seed), inst)
            assert isinstance(parsed, ParseFailure) or not TASK.verify(inst, parsed).correct
        # Extra chord between two cities not adjacent on the tour.
        on_tour = set(_edges(tour))
        a, b = rng.choice([p for p in itertools.combinations(range(n), 2) if p not in on_tour])
        if not _ambiguous(inst, _edges(tour) + [(a, b)], size):
            ran["chord"] += 1
            img = _draw(inst, [a, b], size, closed=False, base=_draw(inst, tour, size))
            parsed = TASK.parse(damage(img, seed), inst)
            assert isinstance(parsed, ParseFailure), parsed
    assert min(ran.values()) >= 3, ran


def test_parse_failure_reasons():
    inst = TASK.generate("8", 1)
    tour = list(TASK.solve(inst).tour)
    out = TASK.parse(TASK.render(inst, size=256), inst)
    assert isinstance(out, ParseFailure) and "fewer than 2 red segments" in out.reason
    # Two disjoint loops: every city has two segments but no single tour.
    two = _draw(inst, tour[:4], 256, base=_draw(inst, tour[4:], 256))
    out = TASK.parse(two, inst)
    assert isinstance(out, ParseFailure)
    # A scribble away from every city.
    img = TASK.render(inst, TASK.solve(inst), size=512)
    ImageDraw.Draw(img).rectangle([0, 0, 40, 40], fill=(255, 0, 0))
    assert isinstance(TASK.parse(img, inst), ParseFailure) or not _correct(inst, img)
    # A fully red image: far too many covered pairs.
    red = Image.new("RGB", (256, 256), (255, 0, 0))
    assert isinstance(TASK.parse(red, inst), ParseFailure)
    for junk in (Image.new("RGB", (1, 1)), Image.new("CMYK", (64, 64))):
        assert isinstance(TASK.parse(junk, inst), ParseFailure)


# --------------------------------------------------------------------------------------------------- text
def test_text_round_trips():
    inst = TASK.generate("12", 4)
    ans = TASK.solve(inst)
    path = TASK.answer_to_text(ans, inst)
    assert path.startswith(f"({inst.cities[0][0]},{inst.cities[0][1]}),") and path.count("(") == 13
    assert path.endswith(f"({inst.cities[0][0]},{inst.cities[0][1]})")
    assert TASK.parse_text(path, inst) == ans
    indices = TASK.answer_to_text(ans)
    assert indices == ",".join(map(str, ans.tour + ans.tour[:1]))
    assert TASK.parse_text(indices, inst) == ans and TASK.parse_text(indices) == ans
    prose = f"Let me think. Cities (1,2) and (3,4) are close... The answer is:\n{path}\nDone."
    assert TASK.parse_text(prose, inst) == ans
    assert TASK.parse_text("Tour: " + " -> ".join(map(str, ans.tour)) + ".", inst) == ans
    assert TASK.parse_text(f"first {TASK.answer_to_text(TspAnswer(tuple(range(12))), inst)} then {path}",
                           inst) == ans
    text = TASK.to_text(inst)
    assert "city 0: (" in text and f"({inst.cities[5][0]},{inst.cities[5][1]})" in text and "16x16" in text


def test_parse_text_junk():
    inst = TASK.generate("6", 0)
    for junk in ("", "I cannot solve this.", "There are 6 cities.", "(1,2)", "[[", "1, 2"):
        assert isinstance(TASK.parse_text(junk, inst), ParseFailure), junk
    assert isinstance(TASK.parse_text("(0,4),(9,9),(0,4)", inst), ParseFailure)   # (9,9) is no city
    assert isinstance(TASK.parse_text("0,1,7,2,0", inst), ParseFailure)           # index 7 out of range
    assert isinstance(TASK.parse_text("(0,4),(3,2),(0,4)"), ParseFailure)         # coordinates need the instance
    assert isinstance(TASK.parse_text(None, inst), ParseFailure)
    # Readable but invalid tours are answers; verify judges them.
    dup = TASK.parse_text("0,1,1,2,3,4,0", inst)
    assert isinstance(dup, TspAnswer) and not TASK.verify(inst, dup).valid


def test_official_paths_parse_as_text():
    gt = json.loads((FIXTURES / "path.json").read_text())
    for it in _official_items():
        parsed = TASK.parse_text(gt[it.item_id], it.instance)
        assert parsed == it.answer and TASK.verify(it.instance, parsed).correct

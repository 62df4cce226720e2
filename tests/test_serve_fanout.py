"""Fan-out over the tests' 2-replica cluster: the same pixels as local runs, in input order, failures kept apart."""

import asyncio

import numpy as np
import pytest
from PIL import Image
from serve_cluster import TOKEN  # serve_url: the session's cluster, from conftest.py

from studio.cli import main
from studio.engine.request import GenerationRequest
from studio.serve.client import StudioServer, run_payload
from studio.serve.fanout import FanOut

TOY = GenerationRequest(prompt="red circle", model="toy", steps=3, width=24, height=16, seed=5)


def fan(url: str, payloads: list[dict], **options):
    async def go():
        async with StudioServer(url, TOKEN) as server:
            fan = FanOut(server, **options)
            return fan, await fan.run(payloads)

    return asyncio.run(go())


def test_an_xyz_grid_over_two_replicas_is_the_local_grid_cell_for_cell(serve_url, tmp_path, capsys):
    axes = ["--model", "toy", "--x", "Steps: 3,4", "--y", "Seed: 1,2", "--prompt", "red circle", "--width", "24",
            "--height", "16", "--quiet"]
    assert main(["xyz", *axes, "--out", str(tmp_path / "local.png"), "--cells-dir", str(tmp_path / "local")]) == 0
    assert main(["xyz", *axes, "--server", serve_url, "--token", TOKEN, "--out", str(tmp_path / "remote.png"),
                 "--cells-dir", str(tmp_path / "remote")]) == 0
    assert "2x2x1 cells" in capsys.readouterr().out
    for index in range(4):
        local, remote = (np.asarray(Image.open(tmp_path / side / f"cell-{index:03d}.png"))
                         for side in ("local", "remote"))
        assert np.array_equal(local, remote), f"cell {index}"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "local.png")),
                          np.asarray(Image.open(tmp_path / "remote.png")))


def test_an_xyz_cell_that_fails_is_named_and_left_blank_while_the_others_are_kept(serve_url, tmp_path, capsys):
    out, cells = tmp_path / "grid.png", tmp_path / "cells"
    code = main(["xyz", "--server", serve_url, "--token", TOKEN, "--model", "toy", "--steps", "3",
                 "--x", "Prompt S/R: circle, circle <lora:nope:1>", "--y", "Seed: 1,2", "--prompt", "red circle",
                 "--width", "24", "--height", "16", "--out", str(out), "--cells-dir", str(cells), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and out.exists()
    assert sorted(p.name for p in cells.iterdir()) == ["cell-000.png", "cell-002.png"]
    assert "error: cell 2 (circle <lora:nope:1>, Seed: 1): prompt: model" in err
    assert "error: cell 4 (circle <lora:nope:1>, Seed: 2)" in err
    grid = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(grid[-16:, -24:], np.full((16, 24, 3), grid[-1, -1]))  # the failed corner cell is blank


def test_a_batch_on_the_server_writes_the_seeds_a_local_batch_writes(serve_url, tmp_path, capsys):
    flags = ["--model", "toy", "--prompt", "red circle", "--steps", "3", "--width", "24", "--height", "16",
             "--seed", "7", "--batch-count", "3", "--quiet"]
    assert main(["generate", *flags, "--out", str(tmp_path / "local.png")]) == 0
    capsys.readouterr()
    remote = ["--server", serve_url, "--token", TOKEN, "--out", str(tmp_path / "remote.png")]
    assert main(["generate", *flags, *remote]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == [str(tmp_path / f"remote-{seed}.png") for seed in (7, 8, 9)]
    assert len({line.rsplit(" on ", 1)[1] for line in lines}) == 2  # both replicas took a share
    for seed in (7, 8, 9):
        assert np.array_equal(np.asarray(Image.open(tmp_path / f"local-{seed}.png")),
                              np.asarray(Image.open(tmp_path / f"remote-{seed}.png"))), seed


def test_outcomes_come_in_input_order_and_a_failing_run_is_reported_apart(serve_url):
    seeds = [11, 12, 13, 14, 15]
    payloads = [run_payload(TOY.with_changes(seed=s)) for s in seeds]
    payloads[2]["request"]["sampler"] = "no_such_sampler"
    fanned, outcomes = fan(serve_url, payloads)
    assert [o.index for o in outcomes] == list(range(5))
    assert [o.ok for o in outcomes] == [True, True, False, True, True]
    assert "sampler" in outcomes[2].error and outcomes[2].field == "sampler"
    for outcome, seed in zip(outcomes, seeds, strict=True):
        if outcome.ok:
            assert f"Seed: {seed}," in outcome.result["parameters"]
    assert len({o.replica for o in outcomes if o.ok}) == 2  # both replicas took a share
    assert fanned.in_flight_limit == 4 and fanned.peak_in_flight <= 4


def test_more_runs_in_flight_than_the_server_queues_for_a_client_wait_their_turn(serve_url):
    payloads = [run_payload(TOY.with_changes(seed=s)) for s in range(10)]
    fanned, outcomes = fan(serve_url, payloads, per_replica=4)  # 8 at once; the server takes 4 per client (429)
    assert fanned.in_flight_limit == 8 and fanned.busy_answers > 0
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert [o.result["parameters"].split("Seed: ")[1].split(",")[0] for o in outcomes] == [str(s) for s in range(10)]


def test_cancel_stops_every_run_and_what_was_not_posted(serve_url):
    payloads = [run_payload(TOY.with_changes(seed=s, steps=1000)) for s in range(8)]

    async def go():
        async with StudioServer(serve_url, TOKEN) as server:
            fanned = FanOut(server)

            def on_event(index, event):
                if event["type"] == "step":
                    fanned.cancel()

            outcomes = await fanned.run(payloads, on_event)
            health = await server.health()  # the server still answers
            return outcomes, health

    outcomes, health = asyncio.run(go())
    assert health["replicas"] == 2
    assert all(o.cancelled and not o.ok for o in outcomes)
    assert sum(o.replica != "" for o in outcomes) <= 4  # only the first wave was ever posted


@pytest.mark.parametrize("per_replica", [0, -1])
def test_per_replica_must_be_positive(per_replica):
    with pytest.raises(ValueError, match="per_replica"):
        FanOut(object(), per_replica=per_replica)

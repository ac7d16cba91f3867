"""Hard-negative mining with the bundled real model and faiss: never a positive, never in place."""

from __future__ import annotations

import json

import pytest
from conftest import FE_DATA, MSMARCO

from studio.core.config import StudioConfig
from studio.datawork.check import check_paths
from studio.datawork.encoder import Encoder
from studio.datawork.mining import mine, read_pool


@pytest.fixture(scope="module")
def encoder():
    # short texts keep the real model fast on two CPU cores
    return Encoder("bundled:all-MiniLM-L6-v2", pooling="mean", max_length=48, batch_size=64)


@pytest.fixture
def source(tmp_path):
    """8 msmarco rows with 3 negatives each; every other row has lost its negatives."""
    rows = [json.loads(line) for line in MSMARCO.open()][:8]
    lines = []
    for i, row in enumerate(rows):
        row["neg"], row["neg_scores"] = row["neg"][:3], row["neg_scores"][:3]
        if i % 2 == 0:
            del row["neg"], row["neg_scores"]
        lines.append(json.dumps(row))
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_mined_negatives_never_contain_a_positive(source, tmp_path, encoder):
    before = source.read_bytes()
    calls = []
    result = mine(
        source,
        tmp_path / "mined.jsonl",
        encoder,
        range_from=0,  # from the very top, where the positives are
        range_to=20,
        n=5,
        only_rows_lacking=False,
        progress=lambda stage, done, total: calls.append((stage, done, total)),
    )
    assert source.read_bytes() == before  # the input is untouched
    rows = [json.loads(line) for line in (tmp_path / "mined.jsonl").open()]
    originals = [json.loads(line) for line in source.open()]
    pool = {p for r in originals for p in r["pos"] + r.get("neg", [])}
    assert result.pool_size == len(pool) and result.rows_mined == 8
    for row in rows:
        assert len(row["neg"]) == 5
        assert not set(row["neg"]) & set(row["pos"])
        assert set(row["neg"]) <= pool and row["query"] not in row["neg"]
        assert "neg_scores" not in row and "pos_scores" not in row  # no longer matching
    # every other row's positive is a candidate for this one: the model ranks them near the top
    assert any(set(r["neg"]) & {p for o in originals for p in o["pos"]} for r in rows)
    assert {stage for stage, _, _ in calls} == {
        "reading",
        "encoding passages",
        "encoding queries",
        "searching",
        "writing",
    }
    assert result.scores_dropped == 8  # every row had pos_scores
    assert not check_paths([tmp_path / "mined.jsonl"]).has_errors


def test_only_rows_lacking_negatives_are_mined(source, tmp_path, encoder):
    result = mine(source, tmp_path / "out.jsonl", encoder, range_from=2, range_to=30, n=3)
    assert result.rows_mined == 4 and result.negatives_added == 12
    before = source.read_bytes().splitlines()
    after = (tmp_path / "out.jsonl").read_bytes().splitlines()
    assert after[1::2] == before[1::2]  # rows with negatives are copied byte for byte
    for line in after[0::2]:
        row = json.loads(line)
        assert len(row["neg"]) == 3 and not set(row["neg"]) & set(row["pos"])
    assert check_paths([source]).counts == {"neg_missing": 4}
    assert check_paths([tmp_path / "out.jsonl"]).counts == {}


def test_candidate_pool_file_and_refusals(source, tmp_path, encoder):
    corpus = tmp_path / "corpus.jsonl"
    texts = [json.loads(line)["neg"][0] for line in (FE_DATA / "retrieval" / "nq.jsonl").open()]
    corpus.write_text(
        "".join(json.dumps({"_id": str(i), "text": t}) + "\n" for i, t in enumerate(texts))
    )
    assert read_pool(corpus) == texts
    result = mine(source, tmp_path / "pooled.jsonl", encoder, 0, 10, 2, candidate_pool=corpus)
    assert result.pool_size == 10
    mined = [json.loads(line) for line in (tmp_path / "pooled.jsonl").open()][0::2]
    assert all(len(r["neg"]) == 2 and set(r["neg"]) <= set(texts) for r in mined)
    with pytest.raises(ValueError, match="refusing to write over the input"):
        mine(source, source, encoder)
    with pytest.raises(FileExistsError):
        mine(source, tmp_path / "pooled.jsonl", encoder)


def test_encoder_from_config_uses_its_pooling():
    config = StudioConfig(
        {"model_name_or_path": "bundled:all-MiniLM-L6-v2", "sentence_pooling_method": "cls"}
    )
    cls_encoder = Encoder.from_config(config, max_length=16)
    assert cls_encoder.pooling == "cls" and cls_encoder.max_length == 16
    vectors = cls_encoder.encode(["a cat", "a much longer sentence about dogs and cats"])
    assert vectors.shape == (2, 384)
    assert abs(float((vectors**2).sum(axis=1)[0]) - 1.0) < 1e-5  # normalised


def test_mining_with_a_config_takes_its_model_pooling_and_instruction(
    source, tmp_path, monkeypatch
):
    seen = []
    original = Encoder.encode

    def spy(self, texts, progress=None, stage="encoding"):
        seen.append((stage, self.pooling, self.max_length, list(texts)))
        return original(self, texts, progress, stage)

    monkeypatch.setattr(Encoder, "encode", spy)
    config = StudioConfig(
        {
            "model_name_or_path": "bundled:all-MiniLM-L6-v2",
            "sentence_pooling_method": "mean",
            "passage_max_len": 32,
            "query_instruction_for_retrieval": "Represent this query: ",
        }
    )
    result = mine(source, tmp_path / "c.jsonl", None, 1, 12, 2, config=config)
    assert result.rows_mined == 4 and result.negatives_added == 8
    (_, pooling, max_length, _), (stage, _, _, queries) = seen
    assert (pooling, max_length, stage) == ("mean", 32, "encoding queries")
    assert all(q.startswith("Represent this query: ") for q in queries) and len(queries) == 4
    with pytest.raises(ValueError, match="give a model"):
        mine(source, tmp_path / "none.jsonl")


def test_mining_never_writes_a_row_data_check_rejects(tmp_path, encoder):
    """Ranks 10-100 of a small pool (or of dense judgments) hold nothing but positives: mining
    wrote `neg: []`, which its own `data check` rejects with the circular fix "mine"."""
    texts = [
        "list.sort() sorts the list in place.",
        "sorted() returns a new sorted list.",
        "Use key= to sort by a field.",
        "statistics.median returns the middle value.",
        "statistics.median_high returns the high median.",
    ]
    rows = [
        {"query": "how do I sort a list", "pos": texts[:3]},
        {"query": "median of data", "pos": texts[3:], "neg": []},
        {"query": "anything in python", "pos": texts},  # every passage is its positive
    ]
    source = tmp_path / "dense.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "mined.jsonl"
    result = mine(source, out, encoder, 10, 100, n=3)
    written = [json.loads(line) for line in out.open()]
    assert [r["query"] for r in written] == ["how do I sort a list", "median of data"]
    assert set(written[0]["neg"]) == set(texts[3:]) and len(written[1]["neg"]) == 3
    assert not check_paths([out]).has_errors
    assert (result.rows_widened, result.rows_dropped) == (3, 1)
    (problem,) = [p for p in result.problems if p.code == "mine_widened"]
    assert "2 got negatives there and 1 found none" in problem.message
    assert "--pool" in problem.fix


def test_the_false_negative_filter_removes_a_planted_false_negative(tmp_path, encoder):
    """A near-copy of a row's positive sits in the pool (another row's negative): mined from
    the top of the ranking it is taken as a negative, unless the filter drops it."""
    rows = [json.loads(line) for line in MSMARCO.open()][:12]
    target = {
        "query": "how do I sort a list in place",
        "pos": ["list.sort(): Sort the list in place, ascending."],
        "neg": [],
    }
    planted = "list.sort(): Sorts the list in place in ascending order."
    rows[0]["neg"] = [planted, *rows[0]["neg"]]
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in [target, *rows]))
    args = dict(range_from=0, range_to=5, n=3)  # rank 0 is the row's own positive
    plain = mine(source, tmp_path / "plain.jsonl", encoder, **args)
    mined = json.loads((tmp_path / "plain.jsonl").open().readline())
    assert planted in mined["neg"] and plain.false_negatives_filtered == 0
    result = mine(source, tmp_path / "filtered.jsonl", encoder, max_neg_ratio=0.95, **args)
    mined = json.loads((tmp_path / "filtered.jsonl").open().readline())
    assert planted not in mined["neg"] and len(mined["neg"]) == 3
    assert result.false_negatives_filtered >= 1
    assert any(p.code == "mine_filtered" for p in result.problems)


def test_a_document_is_never_its_own_negative(tmp_path, encoder):
    from studio.datawork import pairs

    corpus = tmp_path / "corpus.jsonl"
    with open(corpus, "w") as fh:
        for i, topic in enumerate(["volcanoes", "pianos", "glaciers", "bread", "satellites"]):
            text = " ".join(
                f"{topic} fact {j} about {topic} and more {topic} words" for j in range(12)
            )
            fh.write(json.dumps({"_id": f"d{i}", "title": topic, "text": text}) + "\n")
    made = tmp_path / "pairs.jsonl"
    pairs.make_pairs(
        corpus, made, "crop", crop=pairs.CropSettings((4, 6), (12, 20), per_document=4)
    )
    result = mine(made, tmp_path / "mined.jsonl", encoder, range_from=0, range_to=30, n=3)
    assert result.same_document_skipped > 0  # the other crops of one document rank first
    crops = {}
    for r in map(json.loads, made.open()):
        crops.setdefault(r["doc_id"], set()).update(r["pos"])
    for row in map(json.loads, (tmp_path / "mined.jsonl").open()):
        assert row["neg"] and not set(row["neg"]) & crops[row["doc_id"]]

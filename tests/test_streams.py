"""Stream builders on tiny synthetic datasets whose images carry their sample index."""

from __future__ import annotations

import pytest
import torch

from selfgrow.data.arrays import DatasetArrays
from selfgrow.errors import SelfgrowError
from selfgrow.streams import STREAMS, build, describe_streams
from selfgrow.streams.ctrl import LARGE, SMALL, TINY


def fake_dataset(name: str, n_classes: int = 10, train: int = 30, test: int = 6, shape=(1, 8, 8), seed: int = 0) -> DatasetArrays:
    """Random uint8 images, `train`/`test` per class; pixels 0 and 1 hold the sample's index."""
    generator = torch.Generator().manual_seed(seed)

    def part(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = n_classes * per_class
        x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=generator)
        flat = x.view(n, -1)
        flat[:, 0], flat[:, 1] = torch.arange(n) // 256, torch.arange(n) % 256
        return x, torch.arange(n) % n_classes

    (x_train, y_train), (x_test, y_test) = part(train), part(test)
    return DatasetArrays(name, x_train, y_train, x_test, y_test, [f"{name}-{c}" for c in range(n_classes)])


def sample_ids(x: torch.Tensor) -> torch.Tensor:
    """The dataset indices encoded in float images by `fake_dataset`."""
    codes = torch.round(x.flatten(1)[:, :2] * 255).long()
    return codes[:, 0] * 256 + codes[:, 1]


def per_class(y: torch.Tensor, n_classes: int) -> list[int]:
    return torch.bincount(y, minlength=n_classes).tolist()


@pytest.fixture(scope="module")
def digits_like() -> DatasetArrays:
    return fake_dataset("fake")


# ---------------------------------------------------------------- split


@pytest.mark.parametrize(
    ("options", "n_tasks", "used"),
    [({}, 5, 10), ({"n_tasks": 5}, 5, 10), ({"classes_per_task": 5}, 2, 10), ({"n_tasks": 3, "classes_per_task": 3}, 3, 9)],
)
def test_split_tasks_have_disjoint_classes_covering_exactly_the_requested_ones(digits_like, options, n_tasks, used):
    stream = build("split", dataset=digits_like, **options)
    assert len(stream) == n_tasks
    names = [set(t.class_names) for t in stream]
    assert sum(len(s) for s in names) == len(set().union(*names)) == used  # disjoint, and all of them
    assert set().union(*names) == set(digits_like.classes[:used])  # natural order: the first `used` classes
    assert [c for t in stream for c in t.class_ids] == list(range(used))  # contiguous ids in order of arrival
    for task in stream:
        # every sample's dataset label is the class its local label names
        for x, y in [(task.x_train, task.y_train), (task.x_val, task.y_val)]:
            labels = digits_like.y_train[sample_ids(x)]
            assert [digits_like.classes[c] for c in labels] == [task.class_names[k] for k in y]


def test_split_class_order_is_natural_by_default_and_seeded_when_shuffled(digits_like):
    natural = build("split", dataset=digits_like, classes_per_task=2)
    assert natural[0].class_names == ["fake-0", "fake-1"]
    shuffled = [build("split", dataset=digits_like, shuffle_classes=True, seed=s) for s in (0, 0, 1)]
    orders = [[c for t in stream for c in t.class_names] for stream in shuffled]
    assert orders[0] == orders[1] != orders[2]
    assert sorted(orders[0]) == sorted(digits_like.classes)
    given = build("split", dataset=digits_like, class_order=["fake-3", 7, "1", "fake-0"], classes_per_task=2)
    assert [t.class_names for t in given] == [["fake-3", "fake-7"], ["fake-1", "fake-0"]]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_tasks": 3}, "n_tasks 3 cannot split 10 classes"),
        ({"classes_per_task": 4}, "classes_per_task 4 does not divide"),
        ({"n_tasks": 4, "classes_per_task": 3}, "4 \\* 3 = 12 exceeds the 10 classes"),
        ({"n_tasks": 11}, "n_tasks 11"),
        ({"classes_per_task": 0}, "classes_per_task 0"),
        ({"scenario": "domain"}, "Scenario 'domain' is not accepted"),
        ({"class_order": [1, 1]}, "more than once"),
        ({"class_order": ["fake-x"]}, "Unknown fake class"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"max_train_per_class": 0}, "max_train_per_class 0"),
    ],
)
def test_impossible_split_is_refused_naming_the_value(digits_like, options, message):
    with pytest.raises(SelfgrowError, match=message):
        build("split", dataset=digits_like, **options)


def test_per_class_limits_are_respected(digits_like):
    stream = build("split", dataset=digits_like, max_train_per_class=3, max_val_per_class=2, max_test_per_class=1)
    for task in stream:
        assert per_class(task.y_train, 2) == [3, 3]
        assert per_class(task.y_val, 2) == [2, 2]
        assert per_class(task.y_test, 2) == [1, 1]
    assert "train <= 3/class" in stream.description


def test_validation_is_carved_from_train_deterministically_per_seed(digits_like):
    first, again, other = (build("split", dataset=digits_like, val_fraction=0.2, seed=s) for s in (0, 0, 1))
    for a, b in zip(first, again):
        assert torch.equal(a.x_val, b.x_val) and torch.equal(a.x_train, b.x_train)
    val, train = sample_ids(first[0].x_val), sample_ids(first[0].x_train)
    assert not set(val.tolist()) & set(train.tolist())
    assert per_class(first[0].y_val, 2) == [6, 6]  # 20% of 30 per class
    assert len(val) + len(train) == 60  # every training sample of the two classes, once
    assert set(sample_ids(other[0].x_val).tolist()) != set(val.tolist())


def test_tasks_carry_the_dataset_training_statistics_and_matching_augmentation(digits_like):
    task = build("split", dataset=digits_like)[0]
    x = digits_like.x_train.double() / 255
    assert task.mean == pytest.approx([x.mean().item()])
    assert task.std == pytest.approx([x.std(unbiased=False).item()])
    assert task.augment == {}
    cifar_like = fake_dataset("rgb", shape=(3, 32, 32), train=4, test=1)
    assert build("split", dataset=cifar_like)[0].augment == {"crop_padding": 4, "hflip": True}


# ---------------------------------------------------------------- permuted, rotated


def test_permutations_are_fixed_per_seed_and_differ_across_tasks(digits_like):
    stream, again, other = (build("permuted", dataset=digits_like, n_tasks=3, seed=s) for s in (0, 0, 1))
    raw = build("rotated", dataset=digits_like, angles=[0])[0].x_train  # the same samples, untransformed
    for a, b in zip(stream, again):
        assert torch.equal(a.x_train, b.x_train)
    assert not torch.equal(stream[0].x_train, other[0].x_train)
    for i, task in enumerate(stream):
        # each image is a rearrangement of the same pixels ...
        assert torch.equal(task.x_train.flatten(1).sort(1).values, raw.flatten(1).sort(1).values)
        # ... by one permutation per task, the first task included
        assert not torch.equal(task.x_train, raw)
        for other_task in stream.tasks[i + 1 :]:
            assert not torch.equal(task.x_train, other_task.x_train)
    assert [t.class_ids[:2] for t in stream] == [[0, 1], [10, 11], [20, 21]]
    assert stream.scenario == "task"


def test_permuted_domain_scenario_shares_class_ids(digits_like):
    stream = build("permuted", dataset=digits_like, n_tasks=2, scenario="domain")
    assert stream[0].class_ids == stream[1].class_ids == list(range(10))


def test_rotated_tasks_rotate_the_same_images_by_their_angle(digits_like):
    stream = build("rotated", dataset=digits_like, angles=[0, 90])
    assert torch.allclose(stream[1].x_train, torch.rot90(stream[0].x_train, 1, (2, 3)), atol=1e-6)
    assert stream.scenario == "domain"
    default = build("rotated", dataset=digits_like, max_train_per_class=1, max_val_per_class=1, max_test_per_class=1)
    assert [t.name for t in default] == [f"fake rotated {a} deg" for a in (0, 36, 72, 108, 144)]
    with pytest.raises(SelfgrowError, match="n_tasks 3 disagrees with the 2 angles"):
        build("rotated", dataset=digits_like, angles=[0, 90], n_tasks=3)


# ---------------------------------------------------------------- registry


def test_unknown_stream_and_option_names_are_refused_with_what_is_accepted():
    with pytest.raises(SelfgrowError, match="Did you mean 'split'"):
        build("splitt")
    with pytest.raises(SelfgrowError, match=r"Unknown option\(s\) \['n_task'\] for stream 'split'; accepted: .*n_tasks"):
        build("split", n_task=5)


def test_describe_streams_lists_every_stream_with_its_shape():
    rows = describe_streams()
    assert [r["name"] for r in rows] == list(STREAMS)
    assert {"split", "permuted", "rotated", "s_minus", "s_plus", "s_in", "s_out", "s_pl", "s_long", "yaml"} <= set(STREAMS)
    for row in rows:
        assert row["tasks"] and row["classes_per_task"] and row["samples"] and row["summary"]
        assert "seed" in row["options"]


# ---------------------------------------------------------------- yaml / composed


@pytest.fixture(scope="module")
def pair() -> dict[str, DatasetArrays]:
    return {"a": fake_dataset("a", n_classes=4, train=40, test=5), "b": fake_dataset("b", n_classes=3, train=20, test=4, shape=(1, 6, 6), seed=1)}


def test_yaml_stream_builds_tasks_as_described(tmp_path, pair):
    path = tmp_path / "stream.yaml"
    path.write_text(
        "scenario: task\n"
        "input_shape: [3, 8, 8]\n"
        "tasks:\n"
        "  - {dataset: a, classes: [a-2, 0], train_per_class: 7, val_per_class: 3, test_per_class: 2}\n"
        "  - {dataset: b, train_per_class: 4, val_per_class: 2, background: red, rotation: 90}\n"
        "  - {dataset: a, classes: [1, 3], permutation_seed: 5, label_shuffle: true}\n"
    )
    stream = build("yaml", path=str(path), datasets=pair)
    first, second, third = stream
    assert stream.name == "stream" and stream.scenario == "task"
    assert [t.input_shape for t in stream] == [(3, 8, 8)] * 3
    assert first.class_names == ["a-2", "a-0"] and first.class_ids == [0, 1]
    assert per_class(first.y_train, 2) == [7, 7] and per_class(first.y_val, 2) == [3, 3] and per_class(first.y_test, 2) == [2, 2]
    assert per_class(second.y_train, 3) == [4, 4, 4] and second.class_ids == [2, 3, 4]
    assert "rotated 90 deg" in second.description and "on red background" in second.description
    # defaults: round(0.1 * 40) = 4 validation samples per class, the other 36 for training, all test samples
    assert per_class(third.y_val, 2) == [4, 4] and per_class(third.y_train, 2) == [36, 36] and per_class(third.y_test, 2) == [5, 5]
    assert third.class_names == ["a-3", "a-1"]  # label_shuffle: no class keeps its listed label
    assert first.mean != second.mean  # task-IL: each task's own training statistics


def test_yaml_options_override_the_file_and_caps_apply(tmp_path, pair):
    path = tmp_path / "s.yaml"
    path.write_text("- {dataset: a, train_per_class: 9}\n- {dataset: a}\n")
    stream = build("yaml", path=str(path), datasets=pair, scenario="domain", max_train_per_class=5, max_test_per_class=1)
    assert [per_class(t.y_train, 4) for t in stream] == [[5] * 4, [5] * 4]
    assert [per_class(t.y_test, 4) for t in stream] == [[1] * 4, [1] * 4]
    assert stream[0].class_ids == stream[1].class_ids == [0, 1, 2, 3]
    assert stream[1].mean == stream[0].mean  # no task id at test time: one normalisation for all tasks


def test_tasks_reusing_a_class_get_fresh_samples(pair):
    tasks = [{"dataset": "a", "classes": [0, 1], "train_per_class": 10, "val_per_class": 5}] * 2
    first, second = build("yaml", tasks=tasks, datasets=pair)
    seen = [set(sample_ids(torch.cat([t.x_train, t.x_val])).tolist()) for t in (first, second)]
    assert len(seen[0]) == len(seen[1]) == 30 and not seen[0] & seen[1]


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"dataset": "a", "colour": "red"}, r"unknown key\(s\) \['colour'\]"),
        ({"classes": [0]}, "names no dataset"),
        ({"dataset": "a", "classes": ["nope"]}, "Unknown a class 'nope'"),
        ({"dataset": "a", "train_per_class": -1}, "train_per_class -1"),
        ({"dataset": "a", "background": "pink"}, "Unknown colour 'pink'"),
    ],
)
def test_bad_task_descriptions_are_refused(pair, task, message):
    with pytest.raises(SelfgrowError, match=message):
        build("yaml", tasks=[task], datasets=pair)


def test_domain_scenario_needs_the_same_number_of_classes(pair):
    with pytest.raises(SelfgrowError, match="same number of classes"):
        build("yaml", tasks=[{"dataset": "a"}, {"dataset": "b"}], datasets=pair, scenario="domain", input_shape=[1, 8, 8])


# ---------------------------------------------------------------- CTrL


@pytest.fixture(scope="module")
def ctrl_data() -> dict[str, DatasetArrays]:
    """Stand-ins for the CTrL datasets: enough CIFAR-10 samples for t1+ (600/class) and t1- (60/class)."""
    return {
        "cifar10": fake_dataset("cifar10", train=700, test=3, shape=(3, 8, 8)),
        "mnist": fake_dataset("mnist", train=700, test=3, seed=1),
        "fashion_mnist": fake_dataset("fashion_mnist", train=70, test=3, seed=2),
        "digits": fake_dataset("digits", train=70, test=3, shape=(1, 6, 6), seed=3),
    }


def ctrl(name: str, data: dict, **options):
    return build(name, datasets=data, input_shape=[3, 8, 8], **options)


def counts(task) -> tuple[int, int]:
    """(train, val) samples per class, checking they are the same for every class."""
    train, val = per_class(task.y_train, task.n_classes), per_class(task.y_val, task.n_classes)
    assert len(set(train)) == len(set(val)) == 1
    return train[0], val[0]


def test_s_minus_ends_with_its_first_task_on_ten_times_less_fresh_data(ctrl_data):
    stream = ctrl("s_minus", ctrl_data)
    assert [t.name for t in stream] == ["t1 cifar10", "t2 mnist", "t3 permuted fashion_mnist", "t4 fashion_mnist", "t5 digits", "t6 cifar10"]
    first, last = stream[0], stream[5]
    assert counts(first) == (LARGE["train_per_class"], LARGE["val_per_class"])
    assert [counts(t) for t in stream.tasks[1:]] == [(SMALL["train_per_class"], SMALL["val_per_class"])] * 5
    assert first.class_names == last.class_names
    used = [set(sample_ids(torch.cat([t.x_train, t.x_val])).tolist()) for t in (first, last)]
    assert not used[0] & used[1]  # t1- draws new samples of the same classes
    assert torch.equal(first.x_test, last.x_test)  # and is tested on the same test set
    assert stream.scenario == "task" and [t.class_ids[0] for t in stream] == [0, 10, 20, 30, 40, 50]
    assert "digits" in stream.description and "fashion_mnist" in stream.description


def test_s_plus_ends_with_its_first_task_on_ten_times_more_data(ctrl_data):
    stream = ctrl("s_plus", ctrl_data)
    assert counts(stream[0]) == (40, 20) and counts(stream[5]) == (400, 200)
    assert stream[0].class_names == stream[5].class_names


def test_s_out_shuffles_every_label_id_of_the_first_task(ctrl_data):
    stream = ctrl("s_out", ctrl_data)
    first, last = stream[0], stream[5]
    assert sorted(first.class_names) == sorted(last.class_names)
    for name in first.class_names:
        assert first.class_names.index(name) != last.class_names.index(name)
    # the shuffled local labels still name the right images
    labels = ctrl_data["cifar10"].y_train[sample_ids(last.x_train)]
    assert [ctrl_data["cifar10"].classes[c] for c in labels] == [last.class_names[k] for k in last.y_train]
    assert counts(last) == (40, 20)


def test_s_in_ends_with_its_first_task_on_another_background_and_little_data(ctrl_data):
    stream = ctrl("s_in", ctrl_data)
    first, last = stream[0], stream[5]
    assert first.name == "t1 rainbow_mnist" and last.name == "t6 rainbow_mnist"
    assert counts(first) == (400, 200) and counts(last) == (TINY["train_per_class"], TINY["val_per_class"])
    corner = [t.x_test[:, :, 0, -1] for t in (first, last)]  # a corner pixel shows the background colour
    assert not torch.allclose(corner[0].median(0).values, corner[1].median(0).values)
    assert first.class_names == last.class_names


def test_s_pl_has_four_small_tasks_then_a_large_one(ctrl_data):
    stream = ctrl("s_pl", ctrl_data)
    assert [counts(t) for t in stream] == [(40, 20)] * 4 + [(400, 200)]


def test_s_long_samples_five_way_tasks_with_a_growing_share_of_small_ones(ctrl_data, monkeypatch):
    loads = []

    def load(name, data_dir=None, **options):
        loads.append(name)
        return ctrl_data[name]

    monkeypatch.setattr("selfgrow.streams.sources.load", load)
    stream = build("s_long", n_tasks=30, input_shape=[3, 8, 8])
    assert sorted(loads) == sorted(set(loads))  # each dataset loaded once for the whole stream
    assert len(stream) == 30 and all(t.n_classes == 5 for t in stream)
    sizes = [counts(t) for t in stream]
    assert set(sizes) <= {(5, 3), (46, 23), (466, 233)}  # small, or large within what the class has
    assert all(size == (5, 3) for size in sizes[20:])  # the last third is all small
    assert any(size != (5, 3) for size in sizes[:20])
    again = build("s_long", n_tasks=30, input_shape=[3, 8, 8])
    assert [t.description for t in again] == [t.description for t in stream]
    other = build("s_long", n_tasks=30, input_shape=[3, 8, 8], seed=1)
    assert [t.description for t in other] != [t.description for t in stream]


def test_s_long_refuses_an_unknown_pool_dataset(ctrl_data):
    with pytest.raises(SelfgrowError, match="Unknown S\\^long dataset 'imagenet'"):
        ctrl("s_long", ctrl_data, pool=["mnist", "imagenet"])

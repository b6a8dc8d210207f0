"""A table says which dataset options all its runs set away from the configs (a held-out split
means fewer training images), and says nothing when they kept the defaults."""
from benchmark.reports.data_options import changed_options, note


def _job(seed: int, **options) -> dict:
    return {"job": {"method": "erm", "dataset": "cmnist", "conflict_pct": 1.0, "seed": seed, "budget": "paper",
                    "hparams": {"method": {}, "dataset": {"seed": 0, "severity": 4, "valid_fraction": 0.0, **options}}}}


def test_options_shared_by_every_run_are_named_with_the_defaults_they_replace():
    held_out = [_job(0, valid_fraction=0.1, valid_bias="train"), _job(1, valid_fraction=0.1, valid_bias="train")]
    assert changed_options(held_out[0]["job"]) == {"valid_bias": "train", "valid_fraction": 0.1}
    line = note(held_out)
    assert "cmnist: valid_bias=train, valid_fraction=0.1 (defaults: valid_bias=even, valid_fraction=0.0)" in line
    assert "trained on fewer images" in line
    assert note([_job(0), _job(1)]) is None  # the configs' own options: nothing to say
    assert note([_job(0, valid_fraction=0.1), _job(1)]) is None  # differing options are the variant column's to show
    severity = note([_job(0, severity=2)])
    assert "cmnist: severity=2 (defaults: severity=4)" in severity and "fewer images" not in severity

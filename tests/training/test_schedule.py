import pytest

from training.schedule import budget_learning_rate, ramped_accumulation, triangle


def test_triangle_rises_from_a_quarter_to_the_peak_at_three_quarters_then_falls_to_zero():
    rates = [triangle(p / 100, peak=2e-3) for p in range(101)]
    assert rates[0] == pytest.approx(5e-4)
    assert max(rates) == pytest.approx(2e-3) == rates[75]
    assert all(a < b for a, b in zip(rates[:75], rates[1:76], strict=True))
    assert all(a > b for a, b in zip(rates[75:], rates[76:], strict=False))
    assert rates[100] == 0.0
    assert triangle(1.3, peak=1.0) == 0.0  # past the budget (a resumed last step) stays at 0


def test_budget_schedule_warms_up_by_steps_and_decays_by_the_budget_left():
    warming = [budget_learning_rate(s, 0.01, 1e-3, 10, "linear") for s in range(10)]
    assert warming == sorted(warming) and warming[-1] == pytest.approx(1e-3 * 0.99)
    assert budget_learning_rate(500, 0.5, 1e-3, 10, "linear") == pytest.approx(5e-4)
    assert budget_learning_rate(500, 1.0, 1e-3, 10, "cosine") == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown schedule"):
        budget_learning_rate(500, 0.5, 1e-3, 10, "step")


def test_batch_ramp_grows_to_the_full_accumulation_and_stays():
    steps = [ramped_accumulation(p / 100, final=8, ramp=0.6) for p in range(101)]
    assert steps[0] == 1 and steps[60] == 8 and set(steps[60:]) == {8}
    assert steps == sorted(steps)
    assert ramped_accumulation(0.0, final=8, ramp=0.0) == 8

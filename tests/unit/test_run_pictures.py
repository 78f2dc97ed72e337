"""The run-dir sample grid (segkit.callbacks.run_pictures): tiles, colours, legend."""

from __future__ import annotations

import numpy as np

from segkit.callbacks.run_pictures import (
    GAP,
    HEADER,
    IGNORE_COLOUR,
    class_colours,
    colourise,
    sample_grid,
)
from segkit.tracking.examples import Example, example_indices

PALETTE = [[0, 0, 0], [255, 0, 0], [0, 255, 0]]
NAMES = ["background", "road", "car"]


def example(size: int, truth_class: int, predicted_class: int) -> Example:
    rgb = np.full((size, size, 3), 77, dtype=np.uint8)
    truth = np.full((size, size), truth_class)
    truth[0, 0] = 255  # one ignored pixel
    return Example("x", rgb, truth, np.full((size, size), predicted_class))


def test_grid_rows_show_image_truth_and_prediction_in_the_palette():
    grid = sample_grid([example(128, 1, 2), example(128, 2, 1)], NAMES, PALETTE)
    assert grid.dtype == np.uint8 and grid.shape[1] == 3 * 128 + 4 * GAP
    for row, (truth, predicted) in enumerate(((1, 2), (2, 1))):
        top = HEADER + row * (128 + GAP)
        centre = top + 64
        assert tuple(grid[centre, GAP + 64]) == (77, 77, 77)  # the image
        assert tuple(grid[centre, 2 * GAP + 128 + 64]) == tuple(PALETTE[truth])
        assert tuple(grid[centre, 3 * GAP + 256 + 64]) == tuple(PALETTE[predicted])
        assert tuple(grid[top, 2 * GAP + 128]) == IGNORE_COLOUR  # the ignored pixel


def test_small_images_are_enlarged_by_whole_factors():
    grid = sample_grid([example(32, 1, 1)], NAMES, PALETTE)
    assert grid.shape[1] == 3 * 128 + 4 * GAP  # 32 px shown 4x


def test_classes_beyond_the_palette_get_distinct_colours_and_unknown_labels_white():
    colours = class_colours(PALETTE, 6)
    assert colours.shape == (6, 3) and (colours[:3] == PALETTE).all()
    assert len({tuple(c) for c in colours}) == 6
    painted = colourise(np.array([[0, 5, 9, 255]]), colours, ignore_index=255)
    assert tuple(painted[0, 1]) == tuple(colours[5])
    assert tuple(painted[0, 2]) == tuple(painted[0, 3]) == IGNORE_COLOUR


def test_legend_wraps_many_classes_onto_more_lines():
    few = sample_grid([example(128, 0, 0)], NAMES, PALETTE)
    names = [f"class number {i}" for i in range(40)]
    many = sample_grid([example(128, 0, 0)], names, [])
    assert many.shape[0] > few.shape[0] + 3 * 16


def test_examples_are_the_same_evenly_spaced_images_every_epoch():
    assert example_indices(10, 4) == [0, 3, 6, 9]
    assert example_indices(3, 4) == [0, 1, 2]
    assert example_indices(5, 0) == []

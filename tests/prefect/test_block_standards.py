"""Prefect's standard block checks, over every block this package defines."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from prefect.utilities.dispatch import get_registry_for_type
from prefect.utilities.importtools import to_qualified_name

import prefect_fireworks  # noqa: F401  (registers the blocks)


def find_module_blocks() -> list[type[Block]]:
    blocks = get_registry_for_type(Block) or {}
    return [
        block
        for block in blocks.values()
        if to_qualified_name(block).startswith("prefect_fireworks")
    ]


def test_the_package_defines_blocks() -> None:
    assert {b.get_block_type_slug() for b in find_module_blocks()} == {"fireworks-launchpad"}


@pytest.mark.parametrize("block", find_module_blocks())
class TestAllBlocksAdhereToStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self, block: type[Block]) -> type[Block]:
        return block

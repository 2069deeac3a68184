"""Prefect's standard block checks, over every block this package defines.

The blocks are found the way Prefect finds them: through the ``prefect.collections`` entry point
(``load_prefect_collections``), not by importing our modules here, so the test also checks that
the block is discoverable. The parameter list is checked to be non-empty, so the standard checks
cannot skip silently; only the logo check skips, with its reason, when the logo URL cannot be
downloaded (no network).
"""

from __future__ import annotations

from urllib.error import URLError
from urllib.request import urlopen

import pytest
from prefect.blocks.core import Block
from prefect.plugins import load_prefect_collections
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from prefect.utilities.dispatch import get_registry_for_type
from prefect.utilities.importtools import to_qualified_name


def find_module_blocks() -> list[type[Block]]:
    collections = load_prefect_collections()
    loaded = collections.get("prefect_fireworks")
    assert loaded is not None and not isinstance(loaded, Exception), loaded
    blocks = get_registry_for_type(Block) or {}
    return [
        block
        for block in blocks.values()
        if to_qualified_name(block).startswith("prefect_fireworks")
    ]


BLOCKS = find_module_blocks()


def test_the_package_defines_blocks() -> None:
    assert {b.get_block_type_slug() for b in BLOCKS} == {"fireworks-launchpad"}


def test_the_standard_checks_have_blocks_to_run_on() -> None:
    # An empty parametrize list would skip every standard check below without failing.
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS)
class TestAllBlocksAdhereToStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self, block: type[Block]) -> type[Block]:
        return block

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        # Prefect's check downloads the logo (Pillow is in the dev extra, so it is never skipped
        # for want of PIL); without a network it cannot run, and says so.
        try:
            urlopen(str(block._logo_url), timeout=10).close()
        except URLError as exc:
            pytest.skip(f"logo URL {block._logo_url} unreachable (no network?): {exc.reason}")
        super().test_has_a_valid_image(block)

"""The plugin's own tests, with the fixtures and checks that genrec's pytest plugin provides."""

import genrec_lsh

from genrec.testing import check_quantizer


def test_lsh_passes_the_quantizer_contract():
    check_quantizer(genrec_lsh.LSHQuantizer(levels=2, bits=4))


def test_lsh_registers(registry, register):
    info = register(genrec_lsh)
    assert info.error is None
    assert registry.create("quantizer", "lsh", bits="3").codebook_sizes == (8, 8, 8)

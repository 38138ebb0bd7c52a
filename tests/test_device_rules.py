"""The precision rule (bf16 autocast only where the CPU has fast bf16) on faked CPU flags."""
import pytest
import torch

from faceattr import device as dev


@pytest.mark.parametrize("flags,expected", [({"avx2", "fma"}, False), ({"avx512f", "avx512_bf16"}, True),
                                            ({"amx_tile", "amx_bf16"}, True), (set(), False)])
def test_auto_precision_follows_the_cpu_flags(monkeypatch, flags, expected):
    monkeypatch.setattr(dev, "cpu_flags", lambda: frozenset(flags))
    assert dev.use_bf16(torch.device("cpu")) is expected
    assert dev.use_bf16(torch.device("cpu"), "float32") is False
    assert dev.use_bf16(torch.device("cpu"), "bf16") is True


def test_an_unknown_precision_is_named():
    with pytest.raises(ValueError, match="precision must be one of .* got 'fp8'"):
        dev.use_bf16(torch.device("cpu"), "fp8")

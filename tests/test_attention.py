"""genrec.attention computes what torch's fused attention computes."""

import pytest
import torch
import torch.nn.functional as F

from genrec.attention import attention, plain_attention


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_plain_attention_matches_torch_fused_attention(causal: bool, masked: bool) -> None:
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 5, 8, requires_grad=True) for _ in range(3))
    mask = None
    if masked:
        mask = torch.rand(3, 1, 1, 5) > 0.4
        mask[..., 0] = True  # every query keeps a key (the contract; causal queries see key 0)
    ours = plain_attention(q, k, v, mask, causal=causal)
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    torch.testing.assert_close(ours, reference)
    grads = torch.autograd.grad(ours.sum(), (q, k, v))
    expected = torch.autograd.grad(reference.sum(), (q, k, v))
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)


def test_causal_attention_never_looks_ahead() -> None:
    q, k, v = torch.randn(1, 1, 4, 8), torch.randn(1, 1, 4, 8), torch.randn(1, 1, 4, 8)
    changed = v.clone()
    changed[..., 3, :] += 100.0  # only the last key's value differs
    before, after = plain_attention(q, k, v, causal=True), plain_attention(q, k, changed, causal=True)
    torch.testing.assert_close(before[..., :3, :], after[..., :3, :])
    assert not torch.allclose(before[..., 3, :], after[..., 3, :])


def test_attention_dropout_is_applied_and_keeps_the_mean() -> None:
    torch.manual_seed(0)
    q, k = torch.zeros(1, 1, 1, 4), torch.zeros(1, 1, 2000, 4)
    v = torch.ones(1, 1, 2000, 4)
    plain = plain_attention(q, k, v)
    dropped = plain_attention(q, k, v, dropout=0.5)
    torch.testing.assert_close(plain, torch.ones_like(plain), rtol=0, atol=1e-4)
    assert abs(dropped.mean().item() - 1.0) < 0.1
    assert not torch.allclose(dropped, plain)


def test_bf16_autocast_on_cpu_takes_the_plain_path_with_the_same_result() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 6, 16), torch.randn(2, 3, 6, 16), torch.randn(2, 3, 6, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = attention(q, k, v, causal=True)
        plain = plain_attention(q, k, v, causal=True)
    assert mixed.dtype == torch.bfloat16
    torch.testing.assert_close(mixed, plain, rtol=0, atol=0)
    torch.testing.assert_close(mixed.float(), attention(q, k, v, causal=True), rtol=0.05, atol=0.05)

"""ringdp.torch.DistributedOptimizer: parameters broadcast from rank 0, then each step the
same parameters as plain PyTorch on one process training on the global batch (every rank's
batch together), within 1e-5 relative; buckets, passes, replaced gradients, unused
parameters; misuse raises on every rank."""

import pytest

torch = pytest.importorskip("torch")

import ringdp  # noqa: E402
import ringdp.torch  # noqa: E402
from conftest import WORLD, all_ranks, raises_everywhere, same_on_all_ranks  # noqa: E402

RANKS = WORLD.Get_size()
RANK = WORLD.Get_rank()
torch.set_num_threads(1)


def make_model(seed, widths=(23, 31, 7)):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(widths[0], widths[1]), torch.nn.Tanh(),
                               torch.nn.Linear(widths[1], widths[2]))


def batch(rank, step, size=5, width=23, classes=7):
    g = torch.Generator().manual_seed(1000 * step + rank)
    return torch.rand(size, width, generator=g), torch.randint(0, classes, (size,), generator=g)


def global_batch(step, **kw):
    parts = [batch(r, step, **kw) for r in range(RANKS)]
    return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])


def relative_difference(a, b):
    return max(float((pa - pb).abs().max() / pb.abs().max())
               for pa, pb in zip(a.parameters(), b.parameters()))


def train_both(steps=6, passes=1, **options):
    """The distributed model (rank-dependent seed: the broadcast must fix it) and the
    reference, a plain copy of rank 0's model trained on the global batches."""
    model = make_model(seed=RANK)
    reference = make_model(seed=0)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    optimizer = ringdp.torch.DistributedOptimizer(sgd, model,
                                                  backward_passes_per_step=passes, **options)
    same_start = relative_difference(model, reference) == 0
    ref_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    for step in range(steps):
        optimizer.zero_grad()
        ref_optimizer.zero_grad()
        for p in range(passes):
            x, y = batch(RANK, passes * step + p)
            loss_fn(model(x), y).backward()
            gx, gy = global_batch(passes * step + p)
            loss_fn(reference(gx), gy).backward()
        optimizer.step()
        ref_optimizer.step()
    return model, reference, optimizer, same_start


@pytest.mark.parametrize("options", [{}, {"bucket_bytes": 100, "algorithm": "ring"},
                                     {"algorithm": "mpi"}],
                         ids=["default", "small_buckets_ring", "mpi"])
def test_matches_one_process_on_the_global_batch(options):
    model, reference, optimizer, same_start = train_both(**options)
    difference = relative_difference(model, reference)
    params = b"".join(p.detach().numpy().tobytes() for p in model.parameters())
    assert all_ranks(same_start), "parameters were not broadcast from rank 0"
    assert all_ranks(difference < 1e-5), f"rank {RANK}: relative difference {difference:.2e}"
    assert same_on_all_ranks(params), "replicas differ"
    assert all_ranks(isinstance(optimizer, torch.optim.SGD) and optimizer.wait_seconds >= 0)


def test_accumulates_backward_passes():
    model, reference, _, _ = train_both(steps=3, passes=2)
    assert all_ranks(relative_difference(model, reference) < 1e-5)


def test_replaced_gradients_and_unused_parameters():
    model = make_model(seed=0)
    unused = torch.nn.Linear(3, 3)  # registered, never in the forward pass
    model.add_module("unused", unused)
    optimizer = ringdp.torch.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1),
                                                  model)
    x, y = batch(RANK, 0)
    model.zero_grad(set_to_none=True)  # autograd makes new gradient tensors
    torch.nn.functional.cross_entropy(model[:3](x), y).backward()
    grad = model[0].weight.grad.clone()
    optimizer.synchronize()
    expected = torch.from_numpy(ringdp.allreduce(grad.numpy(), op="avg"))
    averaged = torch.allclose(model[0].weight.grad, expected, rtol=1e-6, atol=1e-7)
    optimizer.step()
    assert all_ranks(averaged and torch.all(unused.weight.grad == 0))
    # The gradients are views into the flat buffer again: the next step copies nothing.
    arena = optimizer._ringdp_arena
    base = arena.data_ptr()
    inside = all(base <= p.grad.data_ptr() < base + 4 * arena.numel()
                 for p in model.parameters())
    assert all_ranks(inside)


def test_scheduler_and_state_dict():
    model = make_model(seed=0)
    optimizer = ringdp.torch.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), model)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    x, y = batch(RANK, 0)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    scheduler.step()
    state = optimizer.state_dict()
    assert all_ranks(optimizer.param_groups[0]["lr"] == 0.05 and len(state["state"]) == 4)


def test_errors_raise_on_every_rank():
    model = make_model(seed=0).double()
    raises_everywhere(TypeError, lambda: ringdp.torch.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1), model), mentions="float32")
    model = make_model(seed=0)
    optimizer = ringdp.torch.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1),
                                                  model)
    x, y = batch(RANK, 0)

    def twice():
        torch.nn.functional.cross_entropy(model(x), y).backward()
        torch.nn.functional.cross_entropy(model(x), y).backward()
    raises_everywhere(RuntimeError, twice, mentions="computed again before step()")
    optimizer.synchronize()  # ends the step the second backward broke off
    raises_everywhere(ValueError, lambda: optimizer.step(lambda: 0.0), mentions="closure")
    optimizer.step()
    assert all_ranks(True)

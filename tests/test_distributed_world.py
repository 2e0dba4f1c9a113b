"""The one-process World and the shard arithmetic every rank relies on."""

import torch

from explorer.core import distributed


def test_one_process_world_is_a_no_op():
    world = distributed.World()
    assert world.main
    assert not world.distributed
    assert list(world.shard(5)) == [0, 1, 2, 3, 4]
    assert world.all_sum(torch.tensor([1.0, 2.0])).tolist() == [1.0, 2.0]
    assert world.gather("x") == ["x"]
    assert world.broadcast(3) == 3
    assert world.weighted_mean({"acc": 0.25}, 10) == {"acc": 0.25}


def test_shards_cover_every_item_once_in_rank_order():
    for n in (0, 1, 7, 10, 11):
        for size in (1, 2, 3, 4):
            shards = [distributed.World(r, size, r, "gloo").shard(n)
                      for r in range(size)]
            assert [i for s in shards for i in s] == list(range(n))
            assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_batch_shares_split_a_global_batch_and_never_leave_a_rank_empty():
    idx = torch.arange(10, 20)
    shares = [distributed.World(r, 3, r, "gloo").batch_share(idx) for r in range(3)]
    assert sorted(torch.cat(shares).tolist()) == idx.tolist()
    small = [distributed.World(r, 4, r, "gloo").batch_share(torch.tensor([5, 6]))
             for r in range(4)]
    assert all(len(s) == 1 for s in small)


def test_not_launched_without_a_world_size(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.launched()
    assert distributed.setup() is distributed.SINGLE
    monkeypatch.setenv("WORLD_SIZE", "two")
    assert not distributed.launched()

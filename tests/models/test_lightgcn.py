import math

import pytest
import torch

from graphlearn.models import LightGCN
from graphlearn.models.lightgcn import (
    SymmetricSpMM,
    bipartite_normalized_adjacency,
    propagate,
)

# 3 users, 4 items; item 3 has no interaction; (0, 1) is listed twice
USER = torch.tensor([0, 0, 1, 2, 2, 0])
ITEM = torch.tensor([0, 1, 1, 2, 0, 1])


def dense_adjacency():
    a = torch.zeros(7, 7, dtype=torch.float64)
    for u, i in zip(USER.tolist(), ITEM.tolist()):
        a[u, 3 + i] = a[3 + i, u] = 1.0
    deg = a.sum(1)
    inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    return inv[:, None] * a * inv[None, :]


def test_adjacency_is_the_symmetric_normalisation_by_hand():
    adj = bipartite_normalized_adjacency(USER, ITEM, 3, 4)
    assert adj.layout == torch.sparse_csr and adj.shape == (7, 7)
    dense = adj.to_dense()
    # user 0 has items {0, 1} (degree 2); item 0 has users {0, 2} (degree 2)
    assert math.isclose(dense[0, 3].item(), 1 / math.sqrt(2 * 2), rel_tol=1e-6)
    # user 1 has item {1}; item 1 has users {0, 1}
    assert math.isclose(dense[1, 4].item(), 1 / math.sqrt(1 * 2), rel_tol=1e-6)
    assert torch.equal(dense, dense.t())
    assert dense[6].abs().sum() == 0 and dense[:, 6].abs().sum() == 0  # item 3: empty
    assert torch.allclose(dense.double(), dense_adjacency(), atol=1e-7)


def test_symmetric_spmm_gradient_matches_dense_product():
    adj = bipartite_normalized_adjacency(USER, ITEM, 3, 4).to(torch.float64)
    x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(7, 5, dtype=torch.float64)
    (SymmetricSpMM.apply(adj, x) * weight).sum().backward()
    grad = x.grad.clone()
    x.grad = None
    (dense_adjacency() @ x * weight).sum().backward()
    assert torch.allclose(grad, x.grad)
    assert torch.autograd.gradcheck(lambda t: SymmetricSpMM.apply(adj, t), (x.detach()
                                    .clone().requires_grad_(),))


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_propagation_is_the_mean_of_the_layers(layers):
    x = torch.randn(7, 4, dtype=torch.float64)
    a = dense_adjacency()
    expected = sum(torch.linalg.matrix_power(a, k) @ x for k in range(layers + 1)) / (layers + 1)
    adj = bipartite_normalized_adjacency(USER, ITEM, 3, 4).to(torch.float64)
    assert torch.allclose(propagate(adj, x, layers), expected)


def test_zero_layers_is_matrix_factorisation():
    model = LightGCN(3, 4, torch.stack([USER, ITEM]), dim=4, num_layers=0)
    user_repr, item_repr = model.encode()
    assert torch.equal(user_repr, model.user_embedding.weight)
    assert torch.equal(item_repr, model.item_embedding.weight)


def test_matches_pyg_lightgcn_propagation():
    from torch_geometric.nn.models import LightGCN as PyGLightGCN

    torch.manual_seed(0)
    edges = torch.stack([USER, ITEM])
    ours = LightGCN(3, 4, edges, dim=8, num_layers=3)
    theirs = PyGLightGCN(num_nodes=7, embedding_dim=8, num_layers=3)
    with torch.no_grad():
        theirs.embedding.weight.copy_(torch.cat([ours.user_embedding.weight,
                                                 ours.item_embedding.weight]))
    key = torch.unique(USER * 4 + ITEM)
    u, i = key // 4, key % 4 + 3
    edge_index = torch.stack([torch.cat([u, i]), torch.cat([i, u])])
    user_repr, item_repr = ours.encode()
    expected = theirs.get_embedding(edge_index)
    assert torch.allclose(torch.cat([user_repr, item_repr]), expected, atol=1e-6)


def test_adjacency_is_not_checkpointed_and_init_is_xavier_uniform():
    torch.manual_seed(0)
    model = LightGCN(3, 4, torch.stack([USER, ITEM]), dim=4)
    assert set(model.state_dict()) == {"user_embedding.weight", "item_embedding.weight"}
    bound = math.sqrt(6 / (4 + 4))
    assert model.item_embedding.weight.abs().max() <= bound


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_layers"):
        LightGCN(3, 4, torch.stack([USER, ITEM]), num_layers=-1)
    with pytest.raises(ValueError, match=r"train_edges must be \[2, E\]"):
        LightGCN(3, 4, USER)

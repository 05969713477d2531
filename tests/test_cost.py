"""Cost accounting against hand counts (FLOPs = 2 x multiply-adds of matmuls and convs)."""

from __future__ import annotations

import torch

from selfgrow.nets import build, cost, ops


def small_mlp():
    return build({"kind": "mlp", "input_shape": [1, 4, 4], "hidden": [8, 6],
                  "head": {"kind": "single", "classes": 3}})


def small_convnet():
    return build({"kind": "convnet", "input_shape": [1, 8, 8], "fc": [4],
                  "conv": [{"width": 2, "kernel": 3, "padding": 0, "pool": 2}],
                  "head": {"kind": "single", "classes": 3}})


def test_mlp_params_and_flops_equal_hand_counts():
    net = small_mlp()
    # Linear 16->8, 8->6, head 6->3: weights + biases.
    assert cost.count_params(net) == (16 * 8 + 8) + (8 * 6 + 6) + (6 * 3 + 3) == 211
    macs = 16 * 8 + 8 * 6 + 6 * 3
    assert cost.inference_flops(net) == 2 * macs == 388
    # Backward: weight gradients (same MACs as forward) + input gradients of every layer but
    # the first (the input needs no gradient): 8*6 + 6*3.
    assert cost.training_flops_per_sample(net) == 2 * macs + 2 * macs + 2 * (8 * 6 + 6 * 3) == 908
    assert cost.nbytes(net) == 211 * 4


def test_one_more_class_costs_the_heads_column_forward_and_backward_per_training_sample():
    net = small_mlp()
    # the 7th->new output column of the 6-unit head: forward 6 MACs, weight and input gradients 6 each
    assert cost.training_flops_per_class(net) == 2 * (6 + 6 + 6) == 36
    assert cost.training_flops_per_sample(ops.add_classes(net, 1).net) == 908 + 36
    multi = build({"kind": "mlp", "input_shape": [1, 4, 4], "hidden": [8], "head": {"kind": "multi", "classes": [2]}})
    assert cost.training_flops_per_class(multi) == 0  # a task's samples train through its own head only


def test_convnet_params_and_flops_equal_hand_counts():
    net = small_convnet()
    # conv 1->2 (3x3) on 8x8 -> 6x6, pool -> 3x3, flatten 18, fc 18->4, head 4->3.
    assert cost.count_params(net) == (1 * 9 * 2 + 2) + (18 * 4 + 4) + (4 * 3 + 3) == 111
    conv_macs, fc_macs, head_macs = 6 * 6 * 2 * 9, 18 * 4, 4 * 3
    assert cost.inference_flops(net) == 2 * (conv_macs + fc_macs + head_macs) == 1464
    backward = 2 * conv_macs + 2 * (2 * fc_macs) + 2 * (2 * head_macs)  # conv: weight grad only
    assert cost.training_flops_per_sample(net) == 1464 + backward == 3096


def test_resnet_counts_conv_flops_and_bn_buffers():
    net = build({"kind": "resnet", "input_shape": [1, 4, 4], "stages": [{"width": 2, "blocks": 1}],
                 "head": {"kind": "single", "classes": 3}})
    # stem 1->2, conv1 2->2, conv2 2->2 (3x3, 4x4 maps), head 2->3.
    macs = 16 * 2 * 9 * 1 + 2 * (16 * 2 * 9 * 2) + 2 * 3
    assert cost.inference_flops(net) == 2 * macs
    bn = 3 * (2 * 2)  # three BatchNorms of 2 channels: weight + bias
    params = 2 * 9 + 2 * (2 * 2 * 9) + bn + (2 * 3 + 3)
    assert cost.count_params(net) == params
    buffers = 3 * (2 * 2 * 4 + 8)  # running mean/var (float32) + num_batches_tracked (int64)
    assert cost.nbytes(net) == params * 4 + buffers


def test_modular_costs_one_task_path_or_the_whole_library():
    net = build({"kind": "modular", "input_shape": [1, 2, 3],
                 "modules": [{"type": "linear", "width": 5}, {"type": "linear", "width": 4}],
                 "library": [1, 2], "paths": [[0, 0], [0, 1]], "head": {"kind": "multi", "classes": [2, 3]}})
    assert cost.inference_flops(net, 0) == 2 * (6 * 5 + 5 * 4 + 4 * 2) == 116
    assert cost.inference_flops(net, 1) == 2 * (6 * 5 + 5 * 4 + 4 * 3) == 124
    assert cost.count_params(net, 1) == (6 * 5 + 5) + (5 * 4 + 4) + (4 * 3 + 3) == 74
    assert cost.count_params(net) == (6 * 5 + 5) + 2 * (5 * 4 + 4) + (4 * 2 + 2) + (4 * 3 + 3) == 108


def test_multi_head_flops_default_to_the_last_task():
    net = build({"kind": "mlp", "input_shape": [1, 1, 2], "hidden": [3],
                 "head": {"kind": "multi", "classes": [2, 5]}})
    assert cost.inference_flops(net) == cost.inference_flops(net, 1) == 2 * (2 * 3 + 3 * 5)
    assert cost.inference_flops(net, 0) == 2 * (2 * 3 + 3 * 2)


def test_flop_counts_are_cached_per_spec_and_leave_the_rng_alone():
    net = small_mlp()
    rng = torch.get_rng_state()
    first = cost.training_flops_per_sample(net)
    assert torch.equal(torch.get_rng_state(), rng)
    key = next(k for k in cost._FLOP_CACHE if k[1] == "training" and '"hidden": [8, 6]' in k[0])
    cost._FLOP_CACHE[key] = -1  # a cached value is returned as is, not recounted
    assert cost.training_flops_per_sample(small_mlp()) == -1
    cost._FLOP_CACHE[key] = first
    grown = ops.widen(net, "hidden.0", 2).net
    assert cost.inference_flops(grown) == 2 * (16 * 10 + 10 * 6 + 6 * 3)


def test_a_masked_mlp_counts_the_sub_network_each_task_uses():
    net = build({"kind": "mlp", "input_shape": [1, 4, 4], "hidden": [6, 5], "unit_masks": True,
                 "head": {"kind": "multi", "classes": [2, 2]}})
    with torch.no_grad():
        net.unit_masks[0].born[4:] = 1  # units 4 and 5 of the first layer were added for task 1
        net.unit_masks[0].retired[0] = 1  # unit 0 is replaced from task 1 on (task 0 still uses it)
    assert cost.inference_flops(net, 0) == 2 * (16 * 4 + 4 * 5 + 5 * 2)
    assert cost.inference_flops(net, 1) == 2 * (16 * 5 + 5 * 5 + 5 * 2)
    unmasked = build({"kind": "mlp", "input_shape": [1, 4, 4], "hidden": [6, 5], "head": {"kind": "multi", "classes": [2, 2]}})
    assert cost.inference_flops(unmasked, 1) == 2 * (16 * 6 + 6 * 5 + 5 * 2)

"""Rewards inside RL loops: thin adapters from training frameworks to a scorer, local or behind `mmreward serve`.

    from mmreward.integrations.trl import MMRewardFunc           # GRPOTrainer(reward_funcs=[MMRewardFunc(...)])
    from mmreward.integrations.generator import GeneratorReward  # Flow-GRPO / DanceGRPO: tensors -> rewards (B,)
    mmreward/integrations/verl_reward.py                         # verl custom_reward_function (compute_score)
    from mmreward.integrations.client import RewardClient        # the HTTP client they share

Every adapter takes either a loaded scorer (scored in process) or the URL of a server (`backend.make_backend`).
OpenRLHF needs no adapter: point `--remote_rm_url` at the server's `/get_reward` (see `mmreward.serving.openrlhf`).
"""

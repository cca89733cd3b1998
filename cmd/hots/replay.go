package main

import (
	"context"

	"hots/config"
	"hots/pipeline"
)

// replayPipeline is the file replay of the data path.
func replayPipeline(ctx context.Context, cfg config.Config, obs pipeline.Observer) (replayCounts, error) {
	res, err := pipeline.Replay(ctx, cfg, obs)
	if res == nil {
		return replayCounts{}, err
	}
	return replayCounts{Samples: res.Samples, Rejects: res.Rejected, Containers: res.Containers, TimeLimit: res.TimeLimitReached}, err
}

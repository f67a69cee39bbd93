package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/server"
)

func newServeCmd(stdio IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run Steward: every component in one process",
		Long: `Run Steward with every component in one process and all state in --data-dir.

Settings come from flags, then STEWARD_* environment variables, then the YAML
file named by --config (or STEWARD_CONFIG), then the defaults: a flag beats
the environment, which beats the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags(), stdio.Getenv)
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			logger := newLogger(stdio, cfg)
			// Libraries that log through slog's default (the OpenID provider
			// library does) follow the same level and format.
			slog.SetDefault(logger)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := server.New(ctx, cfg, server.Options{Logger: logger, Version: Version, Stdout: stdio.Out})
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			fmt.Fprintf(stdio.Out, "Steward is running at %s (Ctrl-C to stop)\n", s.URL())
			if err := s.Run(ctx); err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			return nil
		},
	}
	config.RegisterFlags(cmd.Flags())
	return cmd
}

func newLogger(stdio IO, cfg config.Config) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(stdio.Err, opts))
	}
	return slog.New(slog.NewTextHandler(stdio.Err, opts))
}

var _ = context.Background

// ballast: one binary, one command per job.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>

#include "commands/commands.hpp"
#include "policy/duration.hpp"

int main(int argc, char** argv) {
  // A reader of stdout or stderr that goes away (`ballast serve | head`, a log shipper restarting)
  // must not end the process at its next log line: writes then fail, and serving goes on.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"ballast: a gateway that ends connection timeouts between LLM apps and their model servers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("ballast ") + BALLAST_VERSION);

  ballast::ServeArgs serve;
  auto* serve_cmd = app.add_subcommand("serve", "run the gateway (default 127.0.0.1:4000)");
  serve_cmd->add_option("--config,-c", serve.config_file, "YAML configuration file")
      ->check(CLI::ExistingFile);
  serve_cmd->add_option("--listen,-l", serve.listen,
                        "HOST:PORT to listen on (overrides the config's listen)");
  serve_cmd
      ->add_option("--workers", serve.workers,
                   "threads serving requests (overrides the config's workers; "
                   "default one per core)")
      ->check(CLI::Range(1, 256));
  serve_cmd->add_flag("--check", serve.check,
                      "validate the configuration, print its problems (file:line: key) and exit: 0 "
                      "when it is good, 2 when not; nothing is started");

  ballast::SimArgs sim;
  auto& o = sim.options;
  auto* sim_cmd =
      app.add_subcommand("sim", "run an OpenAI-compatible upstream simulator with injectable faults");
  int64_t ttft = 0, itl = 0;
  sim_cmd->add_option("--listen,-l", sim.listen, "HOST:PORT to listen on")->capture_default_str();
  sim_cmd->add_option("--model", o.models,
                      "serve only this model (repeatable); others get 404 model_not_found");
  sim_cmd->add_option("--api-key", o.api_key, "require this key; others get 401 invalid_api_key");
  sim_cmd->add_option("--azure-deployment", o.azure_deployments, "Azure deployment to serve (repeatable)");
  sim_cmd->add_option("--azure-api-version", o.azure_api_versions,
                      "Azure api-version to accept (repeatable)");
  sim_cmd->add_option("--capacity", o.capacity, "generations at once, FIFO-queued beyond it (0: unlimited)")
      ->check(CLI::NonNegativeNumber);
  sim_cmd->add_option("--queue", o.queue, "bound on requests waiting for capacity, then 503 (0: unbounded)")
      ->check(CLI::NonNegativeNumber);
  sim_cmd->add_option("--ttft", ttft, "time to first token, milliseconds")->check(CLI::NonNegativeNumber);
  sim_cmd->add_option("--itl", itl, "inter-token latency, milliseconds")->check(CLI::NonNegativeNumber);
  sim_cmd->add_option("--tokens", o.tokens, "output tokens per answer")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  sim_cmd->add_option("--rpm", o.rpm, "requests per minute, then 429 with Retry-After")
      ->check(CLI::NonNegativeNumber);
  sim_cmd->add_option("--tpm", o.tpm, "tokens per minute, then 429 with Retry-After")
      ->check(CLI::NonNegativeNumber);
  sim_cmd->add_option("--seed", o.seed, "seed for text and fault rolls")->capture_default_str();
  sim_cmd->add_option("--tls-cert", o.tls_cert_file, "serve HTTPS with this PEM certificate chain");
  sim_cmd->add_option("--tls-key", o.tls_key_file, "the PEM private key for --tls-cert");
  sim_cmd->add_flag("--cancel-on-disconnect", o.cancel_on_disconnect,
                    "notice a non-streamed request's disconnect at once, not only when answering");
  sim_cmd->add_option(
      "--fault", sim.faults,
      "inject a fault (repeatable): status=CODE[,retry-after=S][,code=NAME], blackhole, reset, "
      "slow-headers=MS, slow-first-token=MS, stall-after=K, cut-after=K, malformed, malformed-at=K, "
      "no-done, error-event=K, keepalive-only; "
      "each may end in @PROBABILITY, then in #N (only the next N requests)");

  ballast::DoctorArgs doctor;
  auto* doctor_cmd = app.add_subcommand(
      "doctor",
      "say why an endpoint times out, hop by hop, and how to fix it (no arguments: the endpoint "
      "OPENAI_* or AZURE_OPENAI_* name)");
  doctor_cmd->add_option("--config,-c", doctor.config_file, "check every endpoint of this config")
      ->check(CLI::ExistingFile);
  doctor_cmd->add_option("--base-url", doctor.base_url,
                         "the endpoint's base URL, e.g. http://127.0.0.1:8000/v1");
  doctor_cmd->add_option("--provider", doctor.provider, "openai or azure")
      ->check(CLI::IsMember({"openai", "azure"}));
  doctor_cmd->add_option(
      "--api-key-env", doctor.api_key_env,
      "the environment variable holding the key (default OPENAI_API_KEY or AZURE_OPENAI_API_KEY)");
  doctor_cmd->add_option("--model", doctor.model,
                         "the model to look for and ask (default: the first listed)");
  doctor_cmd->add_option("--deployment", doctor.deployment, "Azure: the deployment name");
  doctor_cmd->add_option("--api-version", doctor.api_version, "Azure: the api-version");
  doctor_cmd
      ->add_option("--timeout", doctor.timeout_s,
                   "seconds the first token may take (default: the config's, or 30)")
      ->check(CLI::PositiveNumber);
  doctor_cmd->add_option("--connect-timeout", doctor.connect_timeout_s, "seconds each connect may take")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  doctor_cmd
      ->add_option("--probe-concurrency", doctor.probe_concurrency,
                   "also ramp up to N concurrent requests and show where latency climbs")
      ->check(CLI::Range(1, 256));
  doctor_cmd->add_flag("--json", doctor.json, "print the findings as JSON");
  doctor_cmd->get_option("--config")->excludes(doctor_cmd->get_option("--base-url"));

  ballast::LoadArgs load;
  auto* load_cmd = app.add_subcommand(
      "load", "find where an endpoint starts to time out: closed or open loop, or a sweep");
  load_cmd
      ->add_option("--target", load.target,
                   "the base URL, as a client's base_url (e.g. http://127.0.0.1:4000/v1)")
      ->required();
  load_cmd->add_option("--model", load.model, "the model to ask for")->required();
  load_cmd->add_option("--api-key-env", load.api_key_env, "the environment variable holding the key to send");
  auto* conc =
      load_cmd
          ->add_option("--concurrency", load.concurrency, "closed loop: N requests in flight at all times")
          ->check(CLI::Range(1, 100000));
  auto* rate =
      load_cmd->add_option("--rate", load.rate, "open loop: Poisson arrivals at R requests per second")
          ->check(CLI::PositiveNumber);
  conc->excludes(rate);
  load_cmd->add_flag("--sweep", load.sweep,
                     "raise the load until the SLO breaks, bisect, and report the knee");
  load_cmd
      ->add_option(
          "--duration", load.duration_s,
          "seconds per run (default 10; 5 per step of a sweep, longer when an answer takes over 0.5 s)")
      ->check(CLI::PositiveNumber);
  load_cmd->add_flag("--stream", load.stream,
                     "stream the answers (measures time to first token and between tokens)");
  load_cmd->add_option("--max-tokens", load.max_tokens, "max_tokens of each request")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  load_cmd->add_option("--prompt-tokens", load.prompt_tokens, "about this many tokens of prompt")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  load_cmd->add_option("--timeout", load.timeout_s, "the client's timeout, seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  load_cmd->add_option("--slo-ttft", load.slo_ttft_ms, "SLO: p99 time to first token, ms");
  load_cmd->add_option("--slo-latency", load.slo_latency_ms, "SLO: p99 latency, ms");
  load_cmd->add_option("--max-error-rate", load.max_error_rate, "SLO: the share of requests that may fail")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  load_cmd->add_option("--json", load.json_file, "write every run's figures and the knee to this file");
  load_cmd->add_option("--html", load.html_file, "write a self-contained report with plots to this file");
  load_cmd->add_option("--seed", load.seed, "seed for arrivals and prompts")->capture_default_str();
  load_cmd
      ->add_flag("--respect-retry-after,!--no-respect-retry-after", load.respect_retry_after,
                 "closed loop: after a 429/503 with Retry-After, wait as told before the next request "
                 "(on by default)")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;  // bad usage, as for a bad config
  }
  if (serve_cmd->parsed()) return ballast::run_serve(serve);
  if (doctor_cmd->parsed()) return ballast::run_doctor(doctor);
  if (load_cmd->parsed()) {
    if (load.concurrency == 0 && load.rate == 0 && !load.sweep) {
      std::fprintf(stderr, "ballast load: give --concurrency N, --rate R or --sweep\n");
      return 2;
    }
    load.command = ballast::command_line(argc, argv);
    load.version = BALLAST_VERSION;
    return ballast::run_load(load);
  }
  if (sim_cmd->parsed()) {
    o.ttft = ballast::Millis(ttft);
    o.itl = ballast::Millis(itl);
    return ballast::run_sim(sim);
  }
  return 2;
}

# The same steps as every other tool in bench/compare.ts: a release from git, deps installed only
# when requirements.txt changed (a venv per lockfile hash in shared/, linked into the release),
# `current` switched, the systemd unit restarted, then wait for /api/version to report the commit.
lock "~> 3.17"

set :application, "benchcap"
set :repo_url, ENV.fetch("BENCH_REPO")
set :branch, ENV.fetch("BENCH_REV")
set :deploy_to, "#{ENV.fetch('BENCH_ROOT')}/cap"
set :keep_releases, 5
set :app_port, ENV.fetch("BENCH_PORT")
set :log_level, :info
set :format_options, log_file: nil, command_output: false
set :ssh_options, {
  user: "root",
  keys: [ENV.fetch("BENCH_KEY")],
  keys_only: true,
  auth_methods: %w[publickey],
  user_known_hosts_file: ENV.fetch("BENCH_KNOWN_HOSTS"),
  verify_host_key: :always,
}

UNIT_NAME = "benchcap"

namespace :app do
  desc "Install deps only when the lockfile changed: one venv per requirements.txt hash, shared"
  task :deps do
    on roles(:app) do
      venvs = shared_path.join("venvs")
      execute "cd #{release_path} && h=$(sha256sum requirements.txt | cut -c1-64) && v=#{venvs}/$h && " \
              "if [ ! -d $v ]; then mkdir -p #{venvs} && rm -rf $v.tmp && python3 -m venv --without-pip $v.tmp && " \
              "cp requirements.txt $v.tmp/ && mv $v.tmp $v; fi && ln -sfn $v .venv && " \
              "printf 'FLEET_COMMIT=%s\\n' \"$(cat REVISION)\" > .env"
    end
  end

  desc "Write the unit (only when it differs) with the start limit disabled"
  task :unit do
    on roles(:app) do |host|
      unit = <<~UNIT
        [Unit]
        Description=bench app (capistrano)
        StartLimitIntervalSec=0
        [Service]
        WorkingDirectory=#{current_path}
        EnvironmentFile=#{current_path}/.env
        Environment=APP_HOST=#{host.hostname} APP_PORT=#{fetch(:app_port)}
        ExecStart=#{current_path}/.venv/bin/python app.py
        Restart=on-failure
        [Install]
        WantedBy=multi-user.target
      UNIT
      path = "/etc/systemd/system/#{UNIT_NAME}.service"
      upload! StringIO.new(unit), "#{path}.new"
      execute "if cmp -s #{path}.new #{path}; then rm #{path}.new; else mv #{path}.new #{path} && systemctl daemon-reload; fi"
    end
  end

  desc "Restart and wait until the app reports the deployed commit (polled every 50 ms)"
  task :restart do
    on roles(:app) do |host|
      url = "http://#{host.hostname}:#{fetch(:app_port)}/api/version"
      execute "systemctl restart #{UNIT_NAME} && c=$(cat #{current_path}/REVISION) && " \
              "for i in $(seq 400); do curl -sf #{url} | grep -q \"$c\" && exit 0; sleep 0.05; done; exit 1"
    end
  end
end

after "deploy:updated", "app:deps"
after "deploy:publishing", "app:unit"
after "app:unit", "app:restart"

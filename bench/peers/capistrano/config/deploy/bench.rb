# The servers come from the bench runner: BENCH_HOSTS="127.0.0.11,127.0.0.12,...".
ENV.fetch("BENCH_HOSTS").split(",").each do |addr|
  server addr, user: "root", roles: %w[app]
end

/**
 * Loaded by test/.mocharc.unit.json (`require`): the fast layers (unit, mocks, provider host)
 * run without test servers, so reading the servers' inventory there fails on every machine, as
 * it would on a fresh one, even where an earlier full run left `$FLEET_DIR/fleet.json` behind.
 */
import { NO_SERVERS_ENV } from "../support/fleet";

process.env[NO_SERVERS_ENV] = "1";

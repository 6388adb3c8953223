import com.datastax.driver.core.Cluster;
import com.datastax.driver.core.Session;

/**
 * Waits until Cassandra accepts a CQL login, then prints its release version.
 * Usage: java CqlProbe HOST PORT TIMEOUT_SECONDS PID (credentials from CQL_USER / CQL_PASSWORD).
 * Exit 0 when ready, 1 on timeout, 2 when the process PID (if > 0) has exited.
 */
public final class CqlProbe {
    public static void main(String[] args) throws InterruptedException {
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        long deadline = System.nanoTime() + Long.parseLong(args[2]) * 1_000_000_000L;
        long pid = Long.parseLong(args[3]);
        String user = System.getenv().getOrDefault("CQL_USER", "cassandra");
        String password = System.getenv().getOrDefault("CQL_PASSWORD", "cassandra");
        String lastError = "no attempt made";
        while (System.nanoTime() < deadline) {
            if (pid > 0 && !ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                System.err.println("cassandra (pid " + pid + ") exited while starting");
                System.exit(2);
            }
            try (Cluster cluster = Cluster.builder().addContactPoint(host).withPort(port)
                    .withCredentials(user, password).withoutJMXReporting().withoutMetrics().build();
                 Session session = cluster.connect()) {
                System.out.println(session.execute("SELECT release_version FROM system.local").one().getString(0));
                return;
            } catch (RuntimeException e) {
                lastError = e.getMessage();
            }
            Thread.sleep(1000);
        }
        System.err.println("timed out waiting for a CQL login on " + host + ":" + port + ": " + lastError);
        System.exit(1);
    }
}

import com.datastax.driver.core.Cluster;
import com.datastax.driver.core.RemoteEndpointAwareJdkSSLOptions;
import com.datastax.driver.core.Session;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * Waits until Cassandra accepts a CQL login, then prints its release version.
 * Usage: java CqlProbe HOST PORT TIMEOUT_SECONDS PID (credentials from CQL_USER / CQL_PASSWORD).
 * Exit 0 when ready, 1 on timeout, 2 when the process PID (if > 0) has exited.
 * With CQL_TLS set it speaks TLS and trusts any certificate: it only asks whether the node is up;
 * the service's own tests check certificates and names.
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
            Cluster.Builder builder = Cluster.builder().addContactPoint(host).withPort(port)
                    .withCredentials(user, password).withoutJMXReporting().withoutMetrics();
            if (!System.getenv().getOrDefault("CQL_TLS", "").isEmpty()) {
                builder = builder.withSSL(RemoteEndpointAwareJdkSSLOptions.builder().withSSLContext(trustAll()).build());
            }
            try (Cluster cluster = builder.build();
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

    private static SSLContext trustAll() {
        TrustManager[] any = {new X509TrustManager() {
            public void checkClientTrusted(X509Certificate[] chain, String type) {}
            public void checkServerTrusted(X509Certificate[] chain, String type) {}
            public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }
        }};
        try {
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, any, null);
            return context;
        } catch (java.security.GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}

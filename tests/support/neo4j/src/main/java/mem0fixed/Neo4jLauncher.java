package mem0fixed;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.Config;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.ConnectorPortRegister;
import org.neo4j.configuration.connectors.ConnectorType;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.config.Setting;
import org.neo4j.internal.helpers.HostnamePort;
import org.neo4j.io.fs.DefaultFileSystemAbstraction;
import org.neo4j.kernel.impl.security.User;
import org.neo4j.kernel.internal.GraphDatabaseAPI;
import org.neo4j.logging.NullLogProvider;
import org.neo4j.memory.EmptyMemoryTracker;
import org.neo4j.server.security.SecureHasher;
import org.neo4j.server.security.SystemGraphCredential;
import org.neo4j.server.security.auth.CommunitySecurityModule;
import org.neo4j.server.security.auth.FileUserRepository;
import org.neo4j.string.UTF8;

/**
 * Neo4j 5.26 LTS community as a server process: the DBMS embedded in this JVM, reached over Bolt. The test suite
 * runs it (tests/support/neo4j_process.py), and so does the compose stack's stand-in for the official image
 * (docker/base/neo4j).
 *
 * <pre>
 * Neo4jLauncher HOME [--exit-with-parent] [SETTING=VALUE ...]
 *   SETTING=VALUE       a neo4j.conf setting, validated as strictly as the server does; Bolt is on, and
 *                       server.bolt.listen_address=127.0.0.1:0 takes a free port
 *   --exit-with-parent  shut down when standard input closes: a test run that dies leaves no JVM behind
 *   NEO4J_AUTH          neo4j/PASSWORD, the neo4j user's password when the data directory is new (later starts
 *                       keep the stored one, as in the official image); or none: no authentication
 * </pre>
 *
 * Prints "READY bolt://HOST:PORT" once Bolt accepts connections; SIGTERM shuts the DBMS down cleanly.
 */
public final class Neo4jLauncher {
    private static final String READY_PREFIX = "READY ";
    private static final int CONNECT_TIMEOUT_MS = 10_000;

    private Neo4jLauncher() {}

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            fail("usage: Neo4jLauncher HOME [--exit-with-parent] [SETTING=VALUE ...]");
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        boolean exitWithParent = false;
        Map<String, String> settings = new LinkedHashMap<>();
        settings.put("server.bolt.enabled", "true");
        // Local-first: no anonymous usage reports to Neo4j.
        settings.put("dbms.usage_report.enabled", "false");
        for (int i = 1; i < args.length; i++) {
            int equals = args[i].indexOf('=');
            if (args[i].equals("--exit-with-parent")) {
                exitWithParent = true;
            } else if (equals > 0) {
                settings.put(args[i].substring(0, equals), args[i].substring(equals + 1));
            } else {
                fail("not SETTING=VALUE: " + args[i]);
            }
        }
        String password = password(System.getenv("NEO4J_AUTH"));
        settings.put("dbms.security.auth_enabled", String.valueOf(password != null));
        // Parsed by Neo4j's own Config, so a misspelt setting or a bad value fails here, as in the server.
        Config config = Config.newBuilder().set(GraphDatabaseSettings.neo4j_home, home).setRaw(settings).build();
        Map<Setting<?>, Object> values = new HashMap<>();
        for (String name : settings.keySet()) {
            Setting<Object> setting = config.getSetting(name);
            values.put(setting, config.get(setting));
        }
        Path systemDatabase = config.get(GraphDatabaseSettings.data_directory).resolve("databases").resolve("system");
        if (password != null && !Files.exists(systemDatabase)) {
            setInitialPassword(config, password);
        }

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home).setConfig(values).build();
        Runtime.getRuntime().addShutdownHook(new Thread(dbms::shutdown, "neo4j-shutdown"));
        HostnamePort bolt = ((GraphDatabaseAPI) dbms.database("system")).getDependencyResolver()
                .resolveDependency(ConnectorPortRegister.class)
                .getLocalAddress(ConnectorType.BOLT);
        awaitConnectable(bolt);
        System.out.println(READY_PREFIX + "bolt://" + bolt.getHost() + ":" + bolt.getPort());
        System.out.flush();

        if (exitWithParent) {
            while (System.in.read() != -1) {
                // the parent writes nothing: this only waits for the pipe to close
            }
            System.exit(0);
        }
        new CountDownLatch(1).await();
    }

    /** The password NEO4J_AUTH sets, or null for "none"; the official image's syntax. */
    private static String password(String auth) {
        if (auth == null || auth.isEmpty()) {
            fail("set NEO4J_AUTH to neo4j/PASSWORD (or none to run without authentication)");
        }
        if (auth.equals("none")) {
            return null;
        }
        if (!auth.startsWith("neo4j/")) {
            fail("NEO4J_AUTH must be neo4j/PASSWORD or none: the user is always neo4j");
        }
        return auth.substring("neo4j/".length());
    }

    /**
     * What `neo4j-admin dbms set-initial-password` does, and so the official image: the initial user file, from
     * which Neo4j creates the user neo4j as it creates the system database. No window in which Bolt accepts the
     * default password, and no Cypher to compile before the first start is ready.
     */
    private static void setInitialPassword(Config config, String password) throws Exception {
        int minimum = config.get(GraphDatabaseSettings.auth_minimum_password_length);
        if (password.codePoints().count() < minimum || password.equals("neo4j")) {
            fail("the password in NEO4J_AUTH must have " + minimum + " or more characters and not be neo4j");
        }
        Path file = CommunitySecurityModule.getInitialUserRepositoryFile(config);
        Files.deleteIfExists(file);
        FileUserRepository users = new FileUserRepository(
                new DefaultFileSystemAbstraction(), file, NullLogProvider.getInstance(), EmptyMemoryTracker.INSTANCE);
        users.start();
        SystemGraphCredential credential =
                SystemGraphCredential.createCredentialForPassword(UTF8.encode(password), new SecureHasher());
        users.create(new User("neo4j", null, credential, false, false));
        users.shutdown();
    }

    private static void awaitConnectable(HostnamePort bolt) throws InterruptedException {
        String host = bolt.getHost().equals("0.0.0.0") ? "127.0.0.1" : bolt.getHost();
        long deadline = System.nanoTime() + CONNECT_TIMEOUT_MS * 1_000_000L;
        while (true) {
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress(host, bolt.getPort()), CONNECT_TIMEOUT_MS);
                return;
            } catch (IOException refused) {
                if (System.nanoTime() > deadline) {
                    fail("Bolt does not accept connections on " + host + ":" + bolt.getPort() + ": " + refused);
                }
                Thread.sleep(50);
            }
        }
    }

    private static void fail(String message) {
        System.err.println("Neo4jLauncher: " + message);
        System.exit(2);
    }
}

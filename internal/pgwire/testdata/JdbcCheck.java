import java.sql.*;

// JdbcCheck exercises pgjdbc (the driver DBeaver and most BI tools use)
// against a Steward PostgreSQL port: args are host, port.
public class JdbcCheck {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/steward?sslmode=disable";
        try (Connection c = DriverManager.getConnection(url, "alice", "tok-alice")) {
            System.out.println(c.getMetaData().getDatabaseProductVersion());
            try (PreparedStatement ps = c.prepareStatement("SELECT id, name, born FROM bank.crm.people WHERE id = ? AND name LIKE ?")) {
                ps.setInt(1, 7);
                ps.setString(2, "person%");
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        System.out.println(rs.getInt(1) + "|" + rs.getString(2) + "|" + rs.getDate(3));
                    }
                }
            }
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("SELECT id FROM bank.crm.people ORDER BY id")) {
                ps.setFetchSize(50);
                try (ResultSet rs = ps.executeQuery()) {
                    int n = 0;
                    while (rs.next()) {
                        n++;
                    }
                    System.out.println(n);
                }
            }
            c.commit();
            c.setAutoCommit(true);
            try (PreparedStatement ps = c.prepareStatement("SELECT ?::int * 2")) {
                int sum = 0;
                for (int i = 0; i < 8; i++) { // past prepareThreshold: named, binary
                    ps.setInt(1, i);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        sum += rs.getInt(1);
                    }
                }
                System.out.println(sum);
            }
            try (Statement st = c.createStatement()) {
                st.executeQuery("SELECT * FROM bank.crm.nothere");
            } catch (SQLException e) {
                System.out.println(e.getSQLState());
            }
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SHOW TABLES")) {
                rs.next();
                System.out.println(rs.getString(1));
            }
        }
    }
}

import java.sql.*;

// JdbcCatalog lists what pgjdbc's DatabaseMetaData (DBeaver's navigator,
// most BI tools) finds on a Steward PostgreSQL port: args are host, port,
// database, user, password.
public class JdbcCatalog {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[2] + "?sslmode=disable";
        try (Connection c = DriverManager.getConnection(url, args[3], args[4])) {
            DatabaseMetaData md = c.getMetaData();
            dump("catalog", md.getCatalogs(), "TABLE_CAT");
            dump("schema", md.getSchemas(), "TABLE_SCHEM");
            dump("table", md.getTables(null, null, "%", new String[]{"TABLE", "VIEW"}), "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE");
            dump("column", md.getColumns(null, null, "%", "%"), "TABLE_SCHEM", "TABLE_NAME", "COLUMN_NAME", "TYPE_NAME", "DATA_TYPE", "ORDINAL_POSITION");
            dump("pk", md.getPrimaryKeys(null, null, "people"), "COLUMN_NAME");
        }
    }

    static void dump(String what, ResultSet rs, String... cols) throws SQLException {
        while (rs.next()) {
            StringBuilder b = new StringBuilder(what);
            for (String col : cols) {
                b.append("|").append(rs.getString(col));
            }
            System.out.println(b);
        }
        rs.close();
    }
}

package cli

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/catalog"
)

// datasetID turns what users type (s3://bucket/prefix, or an ID) into the
// API's dataset ID.
func datasetID(ref string) (string, error) {
	ns, name, err := catalog.ParseRef(ref)
	if err != nil {
		return "", steward.Errorf(steward.EInvalid, "dataset %q: want NAMESPACE/NAME (e.g. s3://bank/sales/mortgages) or an ID", ref)
	}
	return catalog.ID(ns, name), nil
}

// parseTag parses NAME or NAME:k=v,k2=v2.
func parseTag(s string) (catalog.Tag, error) {
	name, attrs, has := strings.Cut(s, ":")
	t := catalog.Tag{Name: name}
	if name == "" {
		return t, steward.Errorf(steward.EInvalid, "tag %q: want NAME or NAME:key=value,...", s)
	}
	if has {
		t.Attrs = map[string]string{}
		for _, kv := range strings.Split(attrs, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return t, steward.Errorf(steward.EInvalid, "tag %q: want NAME or NAME:key=value,...", s)
			}
			t.Attrs[k] = v
		}
	}
	return t, nil
}

func tagString(t catalog.Tag) string {
	if len(t.Attrs) == 0 {
		return t.Name
	}
	var kv []string
	for k, v := range t.Attrs {
		kv = append(kv, k+"="+v)
	}
	return t.Name + ":" + strings.Join(kv, ",")
}

func tagsString(ts []catalog.Tag) string {
	var s []string
	for _, t := range ts {
		s = append(s, tagString(t))
	}
	return strings.Join(s, " ")
}

func searchTable(r *catalog.SearchResult) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		inherited := false
		fmt.Fprintln(tw, "DATASET\tCLASS\tFORMAT\tOWNERS\tTAGS\tDESCRIPTION")
		for _, h := range r.Hits {
			d := h.Dataset
			desc, _, _ := strings.Cut(d.Description, "\n")
			if len(desc) > 60 {
				desc = desc[:57] + "..."
			}
			class := d.Classification
			if h.EffectiveClassification != "" && h.EffectiveClassification != class {
				class = h.EffectiveClassification + "*" // inherited through lineage
				inherited = true
			}
			tags := tagsString(d.Tags)
			if it := inheritedTagNames(d); it != "" {
				tags = strings.TrimSpace(tags + " " + it)
				inherited = true
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", catalog.Ref(d.Namespace, d.Name), class, d.Format,
				strings.Join(d.Owners, ","), tags, desc)
		}
		fmt.Fprintf(tw, "(%d of %d)\n", len(r.Hits), r.Total)
		if inherited {
			fmt.Fprintln(tw, "* inherited through lineage (steward dataset show names the source)")
		}
	}
}

// inheritedTagNames lists the tags d inherits through lineage, each once
// and marked with "*", leaving out those it also has as its own.
func inheritedTagNames(d *catalog.Dataset) string {
	own := map[string]bool{}
	for _, t := range d.Tags {
		own[t.Name] = true
	}
	var out []string
	for _, t := range d.InheritedTags {
		if own[t.Name] {
			continue
		}
		own[t.Name] = true
		out = append(out, t.Name+"*")
	}
	return strings.Join(out, " ")
}

func datasetText(d *catalog.Dataset) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Dataset:\t%s\n", catalog.Ref(d.Namespace, d.Name))
		fmt.Fprintf(tw, "ID:\t%s\n", d.ID)
		if d.Bucket != "" {
			fmt.Fprintf(tw, "Location:\ts3://%s/%s\n", d.Bucket, d.Prefix)
		}
		fmt.Fprintf(tw, "Format:\t%s\n", d.Format)
		if len(d.Partitions) > 0 {
			fmt.Fprintf(tw, "Partitions:\t%s\n", strings.Join(d.Partitions, "/"))
		}
		fmt.Fprintf(tw, "Classification:\t%s\n", d.Classification)
		if d.EffectiveClassification != "" && d.EffectiveClassification != d.Classification {
			fmt.Fprintf(tw, "Effective classification:\t%s (inherited through lineage)\n", d.EffectiveClassification)
		}
		fmt.Fprintf(tw, "Owners:\t%s\n", strings.Join(d.Owners, ", "))
		if len(d.Stewards) > 0 {
			fmt.Fprintf(tw, "Stewards:\t%s\n", strings.Join(d.Stewards, ", "))
		}
		fmt.Fprintf(tw, "Tags:\t%s\n", tagsString(d.Tags))
		fmt.Fprintf(tw, "Size:\t%d bytes in %d files, %d rows\n", d.Size, d.FileCount, d.RowCount)
		fmt.Fprintf(tw, "Changed:\t%s (metadata %s, version %d)\n", d.Changed.Format("2006-01-02 15:04:05Z07:00"), d.Updated.Format("2006-01-02 15:04:05Z07:00"), d.Version)
		if d.Description != "" {
			fmt.Fprintf(tw, "Description:\t%s\n", strings.ReplaceAll(d.Description, "\n", "\n\t"))
		}
		if len(d.Schema) > 0 {
			fmt.Fprintln(tw, "\nCOLUMN\tTYPE\tNULLS\tDISTINCT\tMIN\tMAX\tTAGS")
			var walk func(prefix string, cs []catalog.Column)
			walk = func(prefix string, cs []catalog.Column) {
				for _, c := range cs {
					st := catalog.ColumnStats{}
					if c.Stats != nil {
						st = *c.Stats
					}
					fmt.Fprintf(tw, "%s%s\t%s\t%d\t%d\t%s\t%s\t%s\n", prefix, c.Name, c.Type, st.Nulls, st.Distinct, st.Min, st.Max, tagsString(c.Tags))
					walk(prefix+c.Name+".", c.Fields)
				}
			}
			walk("", d.Schema)
		}
		if len(d.InheritedTags) > 0 {
			fmt.Fprintln(tw, "\nINHERITED TAG\tCLASS\tCOLUMN\tSOURCE\tJOB\tWHY")
			for _, t := range d.InheritedTags {
				name := t.Name
				if t.Value != "" {
					name += "=" + t.Value
				}
				origin := t.Origin
				if t.OriginColumn != "" {
					origin += " (" + t.OriginColumn + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, t.Classification, t.Column, origin, t.Job, t.Reason)
			}
		}
		if len(d.Suggestions) > 0 {
			fmt.Fprintln(tw, "\nSUGGESTION\tCOLUMN\tTAG\tCONFIDENCE\tSTATUS\tREASON")
			for _, s := range d.Suggestions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s\t%s\n", s.ID, s.Column, tagString(s.Tag), s.Confidence, s.Status, s.Reason)
			}
		}
		if len(d.Problems) > 0 {
			fmt.Fprintln(tw, "\nPROBLEM\tFILE\tWHEN")
			for _, p := range d.Problems {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Message, p.File, p.Time.Format("2006-01-02 15:04:05Z07:00"))
			}
		}
	}
}

func searchFlags(cmd *cobra.Command) {
	cmd.Flags().StringSlice("tag", nil, "only datasets with this tag (repeatable)")
	cmd.Flags().String("classification", "", "only datasets of this classification (C1..C4)")
	cmd.Flags().String("owner", "", "only datasets with this owner or steward (alice, group:risk)")
	cmd.Flags().String("format", "", "only datasets in this format (parquet, csv, json)")
	cmd.Flags().Int("limit", 20, "how many results")
}

func runSearch(cmd *cobra.Command, cl *client, path, text string) (any, func(*tabwriter.Writer), error) {
	q := url.Values{}
	if text != "" {
		q.Set("q", text)
	}
	tags, _ := cmd.Flags().GetStringSlice("tag")
	for _, t := range tags {
		q.Add("tag", t)
	}
	for _, f := range []string{"classification", "owner", "format"} {
		if v, _ := cmd.Flags().GetString(f); v != "" {
			q.Set(f, v)
		}
	}
	if n, _ := cmd.Flags().GetInt("limit"); n > 0 {
		q.Set("limit", strconv.Itoa(n))
	}
	var r catalog.SearchResult
	err := cl.do(cmd.Context(), "GET", path+"?"+q.Encode(), nil, &r)
	return &r, searchTable(&r), err
}

func newSearchCmd(stdio IO) *cobra.Command {
	cmd := apiCmd(stdio, "search [WORDS...]", "Search the catalog for datasets (typos and prefixes are fine)", cobra.ArbitraryArgs, func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		return runSearch(cmd, cl, "/search", strings.Join(a, " "))
	})
	searchFlags(cmd)
	return cmd
}

func newDatasetCmd(stdio IO) *cobra.Command {
	cmd := &cobra.Command{Use: "dataset", Short: "Show, register, describe, tag and classify datasets (named NAMESPACE/NAME, e.g. s3://bank/sales/mortgages)"}

	ls := apiCmd(stdio, "list", "List the datasets you may discover", cobra.NoArgs, func(cmd *cobra.Command, cl *client, _ []string) (any, func(*tabwriter.Writer), error) {
		return runSearch(cmd, cl, "/datasets", "")
	})
	searchFlags(ls)
	ls.Flags().Set("limit", "100")
	cmd.AddCommand(ls)

	cmd.AddCommand(apiCmd(stdio, "show DATASET", "Show a dataset: schema, statistics, owners, tags, classification, suggestions, problems", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		id, err := datasetID(a[0])
		if err != nil {
			return nil, nil, err
		}
		var d catalog.Dataset
		err = cl.do(cmd.Context(), "GET", "/datasets/"+id, nil, &d)
		return &d, datasetText(&d), err
	}))

	reg := apiCmd(stdio, "register DATASET", "Register a dataset (administrators)", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		ns, name, err := catalog.ParseRef(a[0])
		if err != nil {
			return nil, nil, err
		}
		d := catalog.Dataset{Namespace: ns, Name: name}
		p, err := patchFromFlags(cmd)
		if err != nil {
			return nil, nil, err
		}
		if err := p.Apply(&d); err != nil {
			return nil, nil, err
		}
		var out catalog.Dataset
		err = cl.do(cmd.Context(), "POST", "/datasets", &d, &out)
		return &out, datasetText(&out), err
	})
	editFlags(reg)
	cmd.AddCommand(reg)

	edit := apiCmd(stdio, "edit DATASET", "Change a dataset's description, owners, stewards, classification or format (owners, stewards, administrators)", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		id, err := datasetID(a[0])
		if err != nil {
			return nil, nil, err
		}
		p, err := patchFromFlags(cmd)
		if err != nil {
			return nil, nil, err
		}
		var out catalog.Dataset
		err = cl.do(cmd.Context(), "PATCH", "/datasets/"+id, p, &out)
		return &out, datasetText(&out), err
	})
	editFlags(edit)
	cmd.AddCommand(edit)

	tag := apiCmd(stdio, "tag DATASET TAG...", "Add (or with --remove, remove) tags on a dataset or, with --column, on a column; TAG is NAME or NAME:key=value,...", cobra.MinimumNArgs(2), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		id, err := datasetID(a[0])
		if err != nil {
			return nil, nil, err
		}
		remove, _ := cmd.Flags().GetBool("remove")
		col, _ := cmd.Flags().GetString("column")
		var add []catalog.Tag
		var rm []string
		for _, s := range a[1:] {
			t, err := parseTag(s)
			if err != nil {
				return nil, nil, err
			}
			if remove {
				rm = append(rm, t.Name)
			} else {
				add = append(add, t)
			}
		}
		p := catalog.DatasetPatch{AddTags: add, RemoveTags: rm}
		if col != "" {
			p = catalog.DatasetPatch{Columns: map[string]catalog.ColumnPatch{col: {AddTags: add, RemoveTags: rm}}}
		}
		var out catalog.Dataset
		err = cl.do(cmd.Context(), "PATCH", "/datasets/"+id, p, &out)
		return &out, datasetText(&out), err
	})
	tag.Flags().String("column", "", "tag this column (dotted path for nested fields) instead of the dataset")
	tag.Flags().Bool("remove", false, "remove the named tags")
	cmd.AddCommand(tag)

	cmd.AddCommand(apiCmd(stdio, "suggestion DATASET ID accept|reject", "Accept or reject a detected tag suggestion", cobra.ExactArgs(3), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		id, err := datasetID(a[0])
		if err != nil {
			return nil, nil, err
		}
		var out catalog.Dataset
		err = cl.do(cmd.Context(), "POST", "/datasets/"+id+"/suggestions/"+url.PathEscape(a[1]), map[string]string{"decision": a[2]}, &out)
		return &out, datasetText(&out), err
	}))

	cmd.AddCommand(apiCmd(stdio, "crawl DATASET", "Crawl a dataset's files now", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		id, err := datasetID(a[0])
		if err != nil {
			return nil, nil, err
		}
		var out catalog.Dataset
		err = cl.do(cmd.Context(), "POST", "/datasets/"+id+"/crawl", nil, &out)
		return &out, datasetText(&out), err
	}))

	cmd.AddCommand(apiCmd(stdio, "delete DATASET", "Delete a dataset's catalog entry (its files stay)", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		id, err := datasetID(a[0])
		if err != nil {
			return nil, nil, err
		}
		err = cl.do(cmd.Context(), "DELETE", "/datasets/"+id, nil, nil)
		return map[string]string{"deleted": a[0]}, func(tw *tabwriter.Writer) { fmt.Fprintln(tw, "deleted", a[0]) }, err
	}))
	return cmd
}

func editFlags(cmd *cobra.Command) {
	cmd.Flags().String("description", "", "description (Markdown)")
	cmd.Flags().String("description-file", "", "read the description from this file (- for stdin)")
	cmd.Flags().StringSlice("owner", nil, "owners: user names or group:NAME (replaces the list)")
	cmd.Flags().StringSlice("steward", nil, "stewards: user names or group:NAME (replaces the list)")
	cmd.Flags().String("classification", "", "C1, C2, C3 or C4")
	cmd.Flags().String("format", "", "parquet, csv or json")
	cmd.Flags().StringSlice("tag", nil, "add a tag: NAME or NAME:key=value,... (repeatable)")
}

func patchFromFlags(cmd *cobra.Command) (*catalog.DatasetPatch, error) {
	var p catalog.DatasetPatch
	f := cmd.Flags()
	if f.Changed("description") {
		s, _ := f.GetString("description")
		p.Description = &s
	}
	if fn, _ := f.GetString("description-file"); fn != "" {
		var b []byte
		var err error
		if fn == "-" {
			b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), catalog.MaxDescriptionLen+1))
		} else {
			b, err = os.ReadFile(fn)
		}
		if err != nil {
			return nil, err
		}
		s := string(b)
		p.Description = &s
	}
	for _, k := range []string{"owner", "steward"} {
		if f.Changed(k) {
			l, _ := f.GetStringSlice(k)
			if k == "owner" {
				p.Owners = &l
			} else {
				p.Stewards = &l
			}
		}
	}
	if f.Changed("classification") {
		s, _ := f.GetString("classification")
		p.Classification = &s
	}
	if f.Changed("format") {
		s, _ := f.GetString("format")
		fm := catalog.Format(s)
		p.Format = &fm
	}
	tags, _ := f.GetStringSlice("tag")
	for _, s := range tags {
		t, err := parseTag(s)
		if err != nil {
			return nil, err
		}
		p.AddTags = append(p.AddTags, t)
	}
	return &p, nil
}

import csv
print(sum(int(r["b"]) for r in csv.DictReader(open("/root/data/table.csv"))))
